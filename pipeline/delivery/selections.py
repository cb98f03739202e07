"""Which papers each recipient of an issue gets, decided once, when the recipients are snapshotted.

    global      a reader with no interests, no votes and nothing among the candidates sent to them before
                gets the ranking's first N (N their size): one selection per size, shared by all of them
    personal    anyone else: :func:`pipeline.digest.personal.select` over the issue's candidates, with their
                interests, the model trained on their votes and keyword interests (``relevance.train``),
                their mix, and the papers sent to them in the last ``HISTORY_DAYS`` days
    nothing     a personal selection that comes out empty (nothing matched, and they did not ask for the
                trending list anyway): the delivery is skipped, with that reason

Each distinct selection is one :class:`pipeline.models.Selection` row, which its deliveries point to:
a message is joined once per selection (:mod:`pipeline.compose.assembly`), and ``papermail status``
counts them. A delivery keeps its selection for good, so a retry or a resend sends the same papers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlmodel import Session, col, select

from pipeline.audience import interests as interest_values
from pipeline.compose.blocks import Chosen, Selection, top
from pipeline.digest import personal
from pipeline.digest.relevance import NEUTRAL, Model, Vector, examples, train, words
from pipeline.models import Delivery, DeliveryStatus, Issue, Paper, Subscriber, Vote, db_time
from pipeline.models import Selection as SelectionRow

HISTORY_DAYS = 30  # how far back "already sent" looks
_SET_SELECTION = text("UPDATE delivery SET selection_id = :s WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True))
_SKIP = text("UPDATE delivery SET status = :skipped, last_error = :why, updated_at = :now WHERE id IN :ids"
             ).bindparams(bindparam("ids", expanding=True))
CHUNK = 500  # ids per UPDATE … WHERE id IN (…)
NOTHING_TODAY = "nothing matched this reader's interests today"


@dataclass(slots=True)
class Assigned:
    """What deciding the selections did: readers given one, distinct selections, personal ones among
    those readers, and readers with nothing to send today."""

    readers: int = 0
    selections: int = 0
    personal: int = 0
    nothing: int = 0


@dataclass(frozen=True, slots=True)
class _Reader:
    subscriber_id: int
    size: int
    interests: tuple[interest_values.Interest, ...]
    mix: float
    send_anyway: bool


def assign(session: Session, *, issue: Issue, now: dt.datetime) -> Assigned:
    """Give every pending delivery of ``issue`` without a selection its selection (see the module)."""
    assert issue.id is not None
    rows = session.exec(select(Delivery.id, Delivery.subscriber_id, Delivery.size).where(
        Delivery.issue_id == issue.id, col(Delivery.selection_id).is_(None),
        Delivery.status == DeliveryStatus.pending)).all()
    report = Assigned()
    if not rows:
        return report
    items = issue.items
    readers = _readers(session, issue.id, {sid: size for _, sid, size in rows})
    votes = _votes(session, issue.id)
    sent = _sent_before(session, issue=issue, now=now)
    candidates: personal.Candidates | None = None
    vectors: dict[str, Vector] = {}
    chosen: dict[int, Selection] = {}  # delivery id → selection; absent: nothing to send
    is_personal: set[Selection] = set()
    for delivery_id, subscriber_id, size in rows:
        assert delivery_id is not None
        reader = readers[subscriber_id]
        size = min(size, len(items))
        theirs_sent = sent.get(subscriber_id, {})
        reader_votes = votes.get(subscriber_id, {})
        if not reader.interests and not reader_votes and not theirs_sent:
            chosen[delivery_id] = top(size)
            continue
        if candidates is None:
            candidates = personal.Candidates(items)
            vectors = {str(item.get("arxiv_id")): v for item, v in zip(items, candidates.vectors, strict=True)}
        model = _model(session, candidates, vectors, reader, reader_votes)
        picks = personal.select(candidates, interests=interest_values.compile_interests(reader.interests),
                                model=model, mix=reader.mix, size=size, sent=theirs_sent,
                                send_anyway=reader.send_anyway)
        report.personal += 1
        if not picks:
            continue
        selection = tuple(Chosen(p.index, p.matched, p.also_trending) for p in picks)
        chosen[delivery_id] = selection
        if selection != top(size):
            is_personal.add(selection)
    ids = _store(session, issue=issue, chosen=chosen, personal=is_personal)
    by_selection: dict[int, list[int]] = defaultdict(list)
    for delivery_id, selection in chosen.items():
        by_selection[ids[selection]].append(delivery_id)
    for selection_id, delivery_ids in by_selection.items():
        for chunk in _chunks(delivery_ids):
            session.execute(_SET_SELECTION, {"s": selection_id, "ids": chunk})
    nothing = [delivery_id for delivery_id, _, _ in rows if delivery_id is not None and delivery_id not in chosen]
    for chunk in _chunks(nothing):
        session.execute(_SKIP, {"skipped": DeliveryStatus.skipped.name, "why": NOTHING_TODAY, "now": db_time(now),
                                "ids": chunk})
    session.flush()
    report.readers, report.selections, report.nothing = len(chosen), len(by_selection), len(nothing)
    return report


def picks_json(selection: Selection) -> list[dict[str, Any]]:
    return [{"index": c.index, "match": c.match, "also": c.also} for c in selection]


def from_json(picks: Iterable[dict[str, Any]]) -> Selection:
    return tuple(Chosen(int(p["index"]), p.get("match"), bool(p.get("also"))) for p in picks)


def selection_key(selection: Selection) -> str:
    return hashlib.sha256(json.dumps(picks_json(selection), separators=(",", ":")).encode()).hexdigest()


def _store(session: Session, *, issue: Issue, chosen: dict[int, Selection],
           personal: set[Selection]) -> dict[Selection, int]:
    """The id of each distinct selection's row, made if new; each row's readers counted up."""
    counts: dict[Selection, int] = defaultdict(int)
    for selection in chosen.values():
        counts[selection] += 1
    existing = {row.key: row for row in session.exec(select(SelectionRow).where(SelectionRow.issue_id == issue.id))}
    ids: dict[Selection, int] = {}
    for selection, readers in counts.items():
        key = selection_key(selection)
        row = existing.get(key)
        if row is None:
            row = SelectionRow(issue_id=issue.id, key=key, picks=picks_json(selection),  # type: ignore[arg-type]
                               papers=[[issue.items[c.index]["arxiv_id"], issue.items[c.index].get("score", 0.0)]
                                       for c in selection], personal=selection in personal)
        row.readers += readers
        session.add(row)
        session.flush()
        ids[selection] = row.id  # type: ignore[assignment]
    return ids


def _readers(session: Session, issue_id: int, sizes: dict[int, int]) -> dict[int, _Reader]:
    found = session.exec(select(Subscriber.id, Subscriber.topics, Subscriber.mix, Subscriber.send_anyway)
                         .join(Delivery, col(Delivery.subscriber_id) == col(Subscriber.id))
                         .where(Delivery.issue_id == issue_id, col(Delivery.selection_id).is_(None))).all()
    readers = {}
    for sid, topics, mix, anyway in found:
        assert sid is not None
        readers[sid] = _Reader(sid, sizes.get(sid, 0), tuple(interest_values.load(topics)),
                               max(0, min(100, mix)) / 100, bool(anyway))
    return readers


def _votes(session: Session, issue_id: int) -> dict[int, dict[str, int]]:
    found = session.exec(select(Vote.subscriber_id, Vote.arxiv_id, Vote.value)
                         .join(Delivery, col(Delivery.subscriber_id) == col(Vote.subscriber_id))
                         .where(Delivery.issue_id == issue_id, col(Delivery.selection_id).is_(None))).all()
    votes: dict[int, dict[str, int]] = defaultdict(dict)
    for sid, arxiv_id, value in found:
        votes[sid][arxiv_id] = value
    return votes


def _sent_before(session: Session, *, issue: Issue, now: dt.datetime) -> dict[int, dict[str, float]]:
    """Per reader, the papers among this issue's candidates sent to them lately, with their trend score then."""
    pool = {str(item.get("arxiv_id")) for item in issue.items}
    since = issue.date - dt.timedelta(days=HISTORY_DAYS)
    recent = session.exec(select(SelectionRow.id, SelectionRow.papers).join(Issue, col(Issue.id) == col(SelectionRow.issue_id))
                          .where(Issue.date >= since, col(Issue.id) != issue.id)).all()
    overlapping = {sid: {p[0]: float(p[1]) for p in papers if p[0] in pool} for sid, papers in recent}
    overlapping = {sid: papers for sid, papers in overlapping.items() if papers}
    sent: dict[int, dict[str, float]] = defaultdict(dict)
    for chunk in _chunks([sid for sid in overlapping if sid is not None]):
        found = session.exec(select(Delivery.subscriber_id, Delivery.selection_id).where(
            col(Delivery.selection_id).in_(chunk), Delivery.status == DeliveryStatus.sent)).all()
        for subscriber_id, selection_id in found:
            for arxiv_id, score in overlapping[selection_id].items():
                sent[subscriber_id][arxiv_id] = max(score, sent[subscriber_id].get(arxiv_id, 0.0))
    return sent


def _model(session: Session, candidates: personal.Candidates, vectors: dict[str, Vector], reader: _Reader,
           votes: dict[str, int]) -> Model:
    """The reader's model, trained on their votes (papers of earlier days too, read against today's words)
    and their keyword interests; the neutral model when they have neither."""
    missing = [arxiv_id for arxiv_id in votes if arxiv_id not in vectors]
    if missing:
        for paper in session.exec(select(Paper).where(col(Paper.arxiv_id).in_(missing))):
            vectors[paper.arxiv_id] = candidates.corpus.vector(words(
                {"title": paper.title, "summary": paper.summary or paper.abstract, "keywords": paper.keywords}))
        vectors.update((arxiv_id, {}) for arxiv_id in missing if arxiv_id not in vectors)  # not stored: no words
    found = examples(candidates.corpus, votes=votes, vectors=vectors, interests=reader.interests)
    return train(found) if found else NEUTRAL


def _chunks(values: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start:start + CHUNK])
