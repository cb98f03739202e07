"""Which papers each recipient of an issue gets, decided once, when the recipients are snapshotted.

    global      a reader with no interests, no votes, nothing among the candidates sent to them before and
                no day missed gets the ranking's first N (N their size): one selection per size, shared
    personal    anyone else: :func:`pipeline.digest.personal.select` over the issue's candidates, with their
                interests, the model trained on their votes and keyword interests (``relevance.train``; kept
                in ``ReaderModel`` and trained again only when those change), their mix, and the papers
                sent to them in the last ``HISTORY_DAYS`` days
    catch-up    a reader back from a pause (a daily issue of the last week went out after they confirmed,
                and not to them) may also get the papers this issue carried over from it
                (``Issue.catch_up``): the best of the days they missed, with today's, by the same rules
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

from sqlalchemy import bindparam, delete, insert, text
from sqlmodel import Session, col, select

from pipeline.audience import interests as interest_values
from pipeline.compose.blocks import Chosen, Selection, top
from pipeline.digest import personal
from pipeline.digest.relevance import NEUTRAL, Model, Vector, examples, from_basis, train, words
from pipeline.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    Issue,
    Paper,
    ReaderModel,
    Subscriber,
    Vote,
    db_time,
)
from pipeline.models import Selection as SelectionRow

HISTORY_DAYS = 30  # how far back "already sent" looks
_SET_SELECTION = text("UPDATE delivery SET selection_id = :s WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True))
_MISSED = text(
    "SELECT d.subscriber_id FROM delivery d JOIN subscriber s ON s.id = d.subscriber_id "
    "WHERE d.issue_id = :this AND d.selection_id IS NULL AND s.confirmed_at < :sent_at AND NOT EXISTS "
    "(SELECT 1 FROM delivery x WHERE x.issue_id = :then AND x.subscriber_id = d.subscriber_id AND x.status = :sent)")
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
    items, pool = issue.items, issue.pool
    readers = _readers(session, issue.id, {sid: size for _, sid, size in rows})
    votes = _votes(session, issue.id)
    # What was sent before: of today's own papers, for everyone; of the carried ones, only for the readers who
    # may get them (the rest never do, and yesterday's top ten was sent to nearly everyone).
    sent = _sent_before(session, issue=issue, papers={str(item.get("arxiv_id")) for item in items})
    missed = _missed(session, issue)
    if missed:
        carried_ids = {str(item.get("arxiv_id")) for item in issue.catch_up}
        for sid, found in _sent_before(session, issue=issue, papers=carried_ids, readers=sorted(missed)).items():
            sent[sid].update(found)
    carried: dict[str, list[int]] = defaultdict(list)  # a missed day's papers, by the day's issue
    for i in range(len(items), len(pool)):
        carried[str(pool[i].get("carried_from"))].append(i)
    candidates: personal.Candidates | None = None
    models: _Models | None = None
    chosen: dict[int, Selection] = {}  # delivery id → selection; absent: nothing to send
    for delivery_id, subscriber_id, size in rows:
        assert delivery_id is not None
        reader = readers[subscriber_id]
        size = min(size, len(items))
        theirs_sent = sent.get(subscriber_id, {})
        reader_votes = votes.get(subscriber_id, {})
        theirs_missed = missed.get(subscriber_id, ())
        if not reader.interests and not reader_votes and not theirs_sent and not theirs_missed:
            chosen[delivery_id] = top(size)
            continue
        if candidates is None or models is None:
            candidates = personal.Candidates(pool)
            models = _Models(session, issue.id, candidates, {
                str(item.get("arxiv_id")): v for item, v in zip(pool, candidates.vectors, strict=True)})
        model = models(reader, reader_votes)
        among = [*range(len(items)), *(i for day in sorted(theirs_missed) for i in carried.get(day, ()))]
        picks = personal.select(candidates, interests=interest_values.compile_interests(reader.interests),
                                model=model, mix=reader.mix, size=size, sent=theirs_sent, among=among,
                                send_anyway=reader.send_anyway)
        report.personal += 1
        if not picks:
            continue
        chosen[delivery_id] = tuple(Chosen(p.index, personal.reason(p, reader.mix), p.also_trending) for p in picks)
    if models is not None:
        models.keep(now)
    ids = _store(session, issue=issue, chosen=chosen)
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


def _store(session: Session, *, issue: Issue, chosen: dict[int, Selection]) -> dict[Selection, int]:
    """The id of each distinct selection's row, the new ones inserted in one flush; each row's readers counted
    up. A selection is personal when it is not the plain top of the ranking."""
    counts: dict[Selection, int] = defaultdict(int)
    for selection in chosen.values():
        counts[selection] += 1
    existing = {row.key: row for row in session.exec(select(SelectionRow).where(SelectionRow.issue_id == issue.id))}
    pool = issue.pool
    rows: dict[Selection, SelectionRow] = {}
    for selection, readers in counts.items():
        key = selection_key(selection)
        row = existing.get(key)
        if row is None:
            row = SelectionRow(issue_id=issue.id, key=key, picks=picks_json(selection),  # type: ignore[arg-type]
                               papers=[[pool[c.index]["arxiv_id"], pool[c.index].get("score", 0.0)] for c in selection],
                               personal=selection != top(len(selection)))
        row.readers += readers
        rows[selection] = row
    session.add_all(rows.values())
    session.flush()
    return {selection: row.id for selection, row in rows.items()}  # type: ignore[misc]


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


def _sent_before(session: Session, *, issue: Issue, papers: set[str],
                 readers: Sequence[int] | None = None) -> dict[int, dict[str, float]]:
    """Per reader (of ``readers``, or anyone), which of ``papers`` were sent to them lately, with their trend
    score then."""
    since = issue.date - dt.timedelta(days=HISTORY_DAYS)
    recent = session.exec(select(SelectionRow.id, SelectionRow.papers).join(Issue, col(Issue.id) == col(SelectionRow.issue_id))
                          .where(Issue.date >= since, col(Issue.id) != issue.id)).all()
    overlapping = {sid: {p[0]: float(p[1]) for p in found if p[0] in papers} for sid, found in recent}
    overlapping = {sid: found for sid, found in overlapping.items() if found and sid is not None}
    sent: dict[int, dict[str, float]] = defaultdict(dict)
    for chunk in _chunks(list(overlapping)):  # type: ignore[arg-type]
        for people in [None] if readers is None else _chunks(readers):
            query = select(Delivery.subscriber_id, Delivery.selection_id).where(
                col(Delivery.selection_id).in_(chunk), Delivery.status == DeliveryStatus.sent)
            if people is not None:
                query = query.where(col(Delivery.subscriber_id).in_(people))
            for subscriber_id, selection_id in session.exec(query).all():
                for arxiv_id, score in overlapping[selection_id].items():
                    sent[subscriber_id][arxiv_id] = max(score, sent[subscriber_id].get(arxiv_id, 0.0))
    return sent


class _Models:
    """Readers' models: kept from an earlier issue while their votes and keyword interests are the same,
    trained (and kept) otherwise."""

    def __init__(self, session: Session, issue_id: int, candidates: personal.Candidates,
                 vectors: dict[str, Vector]) -> None:
        self._session, self._candidates, self._vectors = session, candidates, vectors
        self._kept = {sid: (key, basis) for sid, key, basis in session.exec(
            select(ReaderModel.subscriber_id, ReaderModel.key, ReaderModel.basis)
            .join(Delivery, col(Delivery.subscriber_id) == col(ReaderModel.subscriber_id))
            .where(Delivery.issue_id == issue_id, col(Delivery.selection_id).is_(None)))}
        self.trained: dict[int, tuple[str, list[list[Any]]]] = {}

    def __call__(self, reader: _Reader, votes: dict[str, int]) -> Model:
        self._read_papers(votes)
        found = examples(self._candidates.corpus, votes=votes, vectors=self._vectors, interests=reader.interests)
        if not found:
            return NEUTRAL
        key = _model_key(votes, reader.interests)
        kept = self._kept.get(reader.subscriber_id)
        if kept is not None and kept[0] == key:
            return from_basis(kept[1], found)
        model = train(found)
        self.trained[reader.subscriber_id] = (key, [[ref, a] for ref, a in model.basis])
        return model

    def _read_papers(self, votes: dict[str, int]) -> None:
        """Vectors for voted papers of earlier days, read against today's words (once per paper)."""
        missing = [arxiv_id for arxiv_id in votes if arxiv_id not in self._vectors]
        if not missing:
            return
        for paper in self._session.exec(select(Paper).where(col(Paper.arxiv_id).in_(missing))):
            self._vectors[paper.arxiv_id] = self._candidates.corpus.vector(words(
                {"title": paper.title, "summary": paper.summary or paper.abstract, "keywords": paper.keywords}))
        self._vectors.update((a, {}) for a in missing if a not in self._vectors)  # not stored: no words

    def keep(self, now: dt.datetime) -> None:
        """Store the models trained in this run, replacing the readers' older ones."""
        ids = list(self.trained)
        for chunk in _chunks(ids):
            self._session.execute(delete(ReaderModel).where(col(ReaderModel.subscriber_id).in_(chunk)))
        for chunk in _chunks(ids):
            self._session.execute(insert(ReaderModel), [
                {"subscriber_id": sid, "key": self.trained[sid][0], "basis": self.trained[sid][1],
                 "trained_at": now} for sid in chunk])


def _missed(session: Session, issue: Issue) -> dict[int, set[str]]:
    """Per reader of ``issue``, the days whose carried papers they missed: that day's daily issue went out
    after they confirmed, and not to them (they were paused, or it failed)."""
    days = sorted({str(item.get("carried_from")) for item in issue.catch_up})
    if not days:
        return {}
    earlier = session.exec(select(col(Issue.id), col(Issue.date), col(Issue.send_started_at)).where(
        Issue.edition == Edition.daily, col(Issue.date).in_([dt.date.fromisoformat(d) for d in days]))).all()
    missed: dict[int, set[str]] = defaultdict(set)
    for then_id, date, sent_at in earlier:
        if sent_at is None:
            continue
        for (subscriber_id,) in session.execute(_MISSED, {"this": issue.id, "then": then_id, "sent_at": db_time(sent_at),
                                                          "sent": DeliveryStatus.sent.name}):
            missed[subscriber_id].add(date.isoformat())
    return missed


def _model_key(votes: dict[str, int], interests: Iterable[interest_values.Interest]) -> str:
    keywords = sorted((i.mode.value, i.value) for i in interests if i.kind is interest_values.Kind.keyword)
    return hashlib.sha256(json.dumps([sorted(votes.items()), keywords]).encode()).hexdigest()


def _chunks(values: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start:start + CHUNK])
