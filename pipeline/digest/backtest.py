"""The trend-score backtest: would a score have put first the papers that went on to gain the most?
Pure: no database, no clock; the history comes in as ``HistoryDay`` values (``pipeline.digest.history`` loads them).

For each day of the history:

    candidates  the papers listed that day and not withdrawn, as the daily issue takes them
    send moment the next day's SEND_HOUR UTC and the run's first minutes (``issues.as_of_for``): when
                that day's issue is ranked
    seen        each candidate with its snapshots cut to those fetched at or before the send moment.
                ``view_of`` builds it, once per day, and it is all a scorer is ever given: no score
                can look ahead, whatever the scorer does with it (``score_candidate`` falls back on
                the first snapshot after ``now`` for a paper with none before it; here there is none
                to fall back on, so such a paper scores as unmeasured, 0).
    truth       what each paper gained in the horizon after the send moment (``gained``): per count
                (upvotes, comments, GitHub stars), the snapshot nearest at or before send + horizon
                minus the one nearest at or before the send moment (none yet: zero, a paper enters
                the list with nothing; a count that fell gains zero).

Each target count is judged on its own: upvotes gained is the primary one (the one ``fit`` optimises);
comments and stars gained get tables of their own rather than being folded into one made-up sum.
Per day, per scorer, against a target:

    NDCG@10       DCG of the scorer's top 10 over the DCG of the best possible top 10; the grade of a
                  paper is its gain itself (linear, not 2^gain - 1: gains run into the hundreds).
                  1 = the ten biggest gainers in the right order.
    precision@10  the share of the scorer's top 10 that are among the truth's top 10 (papers tied with
                  the tenth biggest gain count too; a paper that gained nothing never does).
    Spearman rho  rank correlation of score and gain over all the day's candidates, ties at their
                  average rank; 0 when the scores or the gains are all equal (no order to compare).

Orders break ties by arXiv id, so they are deterministic and no scorer wins a tie by luck of the draw.
A day is judged only with at least ``MIN_CANDIDATES`` papers and a history that reaches past the end of
its horizon (some snapshot of its papers at or after send + horizon), and for a target only if some paper
gained on it. The figures are means over the judged days with a 95 % bootstrap interval: days resampled
with replacement (fixed seed, the same resamples for every scorer, so scorers are compared on the same draws).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from pipeline.digest.issues import as_of_for
from pipeline.digest.metrics import RESAMPLES, SEED, Estimate, K, bootstrap, day_metrics
from pipeline.digest.rank import Candidate, Snapshot, Weights, score_candidate
from pipeline.errors import BacktestError

MIN_CANDIDATES = 10  # fewer papers than the top k: the @10 metrics say nothing
MIN_DAYS = 3  # judged days below which a mean and its interval mean nothing
FIT_SHARE = 0.6  # the first 60 % of the judged days fit the weights; the rest judge them
TARGETS = ("upvotes", "comments", "stars")
TARGET_NAMES = {"upvotes": "upvotes gained", "comments": "comments gained", "stars": "GitHub stars gained"}

FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.UTC)

# Why a day was not judged (the keys of ``Report.skipped``).
FEW_PAPERS = f"fewer than {MIN_CANDIDATES} papers"
SHORT_HISTORY = "the history ends before the horizon does"
NO_GAIN = "no paper gained on this count after the send moment"


def send_moment(day: dt.date, *, send_hour: int) -> dt.datetime:
    """The moment the daily issue of ``day`` describes, as the daily job computes it."""
    return as_of_for(day, send_hour=send_hour, now=FAR_FUTURE)


# --- the history, and what a scorer may see of it -------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryDay:
    """One day of stored history: its candidates with the snapshots the loader found for them."""

    day: dt.date
    send_at: dt.datetime
    candidates: tuple[Candidate, ...]
    last_fetch: dt.datetime | None  # the newest snapshot of any of these papers anywhere in the store


@dataclass(frozen=True, slots=True)
class Gain:
    upvotes: int
    comments: int
    stars: int

    def of(self, target: str) -> int:
        return int(getattr(self, target))


@dataclass(frozen=True, slots=True)
class DayView:
    """A day as the backtest judges it: what scorers may see, and what happened afterwards."""

    day: dt.date
    send_at: dt.datetime
    seen: tuple[Candidate, ...]  # snapshots at or before send_at only, oldest first
    gains: tuple[Gain, ...]  # per candidate, in the same order
    covered: bool  # the history reaches past send_at + horizon

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.arxiv_id for c in self.seen)


def seen_at(candidate: Candidate, moment: dt.datetime) -> Candidate:
    """The candidate as it could be known at ``moment``: its snapshots fetched at or before it, oldest first."""
    kept = tuple(sorted((s for s in candidate.snapshots if s.fetched_at <= moment), key=lambda s: s.fetched_at))
    return replace(candidate, snapshots=kept)


def _count_at(snapshots: Sequence[Snapshot], times: Sequence[dt.datetime], moment: dt.datetime) -> Snapshot | None:
    at = bisect.bisect_right(times, moment)
    return snapshots[at - 1] if at else None


def gained(candidate: Candidate, *, start: dt.datetime, end: dt.datetime) -> Gain:
    """What the paper gained from ``start`` to ``end``: the snapshot nearest at or before ``end`` minus the one
    nearest at or before ``start`` (none: zero), per count; a count that fell gained nothing."""
    snaps = sorted(candidate.snapshots, key=lambda s: s.fetched_at)
    times = [s.fetched_at for s in snaps]
    before, after = _count_at(snaps, times, start), _count_at(snaps, times, end)
    if after is None:
        return Gain(0, 0, 0)
    up0, cm0, st0 = (before.upvotes, before.comments, before.github_stars or 0) if before else (0, 0, 0)
    return Gain(max(0, after.upvotes - up0), max(0, after.comments - cm0), max(0, (after.github_stars or 0) - st0))


def view_of(day: HistoryDay, *, horizon: dt.timedelta) -> DayView:
    """The one place the send moment is enforced: scorers get ``seen``, the truth comes from the rest."""
    end = day.send_at + horizon
    return DayView(
        day=day.day,
        send_at=day.send_at,
        seen=tuple(seen_at(c, day.send_at) for c in day.candidates),
        gains=tuple(gained(c, start=day.send_at, end=end) for c in day.candidates),
        covered=day.last_fetch is not None and day.last_fetch >= end,
    )


# --- scorers ----------------------------------------------------------------------------------------

Scorer = Callable[[Candidate, dt.datetime], float]


def _hours(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 3600.0


def _latest(candidate: Candidate, now: dt.datetime) -> Snapshot | None:
    seen = [s for s in candidate.snapshots if s.fetched_at <= now]
    return max(seen, key=lambda s: s.fetched_at) if seen else None


def total_upvotes(candidate: Candidate, now: dt.datetime) -> float:
    """Upvotes so far: the list's own order."""
    latest = _latest(candidate, now)
    return float(latest.upvotes) if latest else 0.0


def hn_gravity(candidate: Candidate, now: dt.datetime) -> float:
    """Hacker News: (points - 1) / (age_h + 2)^1.8, the submitter's own vote left out."""
    age = max(0.0, _hours(now - candidate.listed_at))
    return (total_upvotes(candidate, now) - 1) / (age + 2) ** 1.8


STAR_WINDOW_HOURS = 24.0


def stars_per_hour(candidate: Candidate, now: dt.datetime) -> float:
    """Papers with Code: GitHub stars gained per hour over the last 24 h of snapshots (from the oldest one in
    that window to the newest; with a single snapshot, since listing from zero, as the trend score does)."""
    seen = sorted((s for s in candidate.snapshots if s.fetched_at <= now), key=lambda s: s.fetched_at)
    if not seen:
        return 0.0
    latest = seen[-1]
    earlier = [s for s in seen[:-1] if _hours(latest.fetched_at - s.fetched_at) <= STAR_WINDOW_HOURS]
    base_at, base = (earlier[0].fetched_at, earlier[0].github_stars or 0) if earlier else (candidate.listed_at, 0)
    span = max(1.0, _hours(latest.fetched_at - base_at))
    return max(0, (latest.github_stars or 0) - base) / span


def papermail(weights: Weights) -> Scorer:
    """papermail's trend score (``rank.score_candidate``) with these weights."""

    def score(candidate: Candidate, now: dt.datetime) -> float:
        return score_candidate(candidate, now=now, weights=weights).score

    return score


def standard_scorers(weights: Weights) -> dict[str, Scorer]:
    """The scores compared by ``papermail backtest``, papermail's with the configured weights."""
    return {"upvotes": total_upvotes, "hn-gravity": hn_gravity, "stars-per-hour": stars_per_hour,
            "papermail": papermail(weights)}


def score_view(view: DayView, scorer: Scorer) -> list[float]:
    """The scorer's score of each candidate of the day, seen as of the send moment."""
    return [scorer(c, view.send_at) for c in view.seen]


# --- judging a history ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    scorer: str
    ndcg: Estimate
    precision: Estimate
    spearman: Estimate
    days: int


@dataclass(frozen=True, slots=True)
class Report:
    """Every scorer's figures against one target over the judged days, and why other days were not judged."""

    target: str
    rows: tuple[Row, ...]
    judged: tuple[dt.date, ...]
    skipped: dict[str, int] = field(default_factory=dict)


def judgeable(views: Iterable[DayView], target: str = "upvotes") -> tuple[list[DayView], Counter[str]]:
    """The days that can be judged against ``target``, oldest first, and how many were skipped, by reason."""
    kept: list[DayView] = []
    skipped: Counter[str] = Counter()
    for view in sorted(views, key=lambda v: v.day):
        if len(view.seen) < MIN_CANDIDATES:
            skipped[FEW_PAPERS] += 1
        elif not view.covered:
            skipped[SHORT_HISTORY] += 1
        elif not any(g.of(target) for g in view.gains):
            skipped[NO_GAIN] += 1
        else:
            kept.append(view)
    return kept, skipped


def evaluate(views: Sequence[DayView], scorers: Mapping[str, Scorer], *, target: str = "upvotes", k: int = K,
             resamples: int = RESAMPLES, seed: int = SEED, min_days: int = MIN_DAYS) -> Report:
    """Every scorer's NDCG@k, precision@k and Spearman rho on the judgeable days, with bootstrap intervals.

    ``BacktestError`` when fewer than ``min_days`` days can be judged.
    """
    if target not in TARGETS:
        raise BacktestError(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
    days, skipped = judgeable(views, target)
    if len(days) < min_days:
        raise BacktestError(f"only {len(days)} of {len(views)} days can be judged{skipped_note(skipped)}; "
                            f"at least {min_days} are needed")
    rows = []
    for name, scorer in scorers.items():
        per_day = [day_metrics(score_view(v, scorer), [g.of(target) for g in v.gains], v.ids, k) for v in days]
        rows.append(Row(
            scorer=name,
            ndcg=bootstrap([m.ndcg for m in per_day], resamples=resamples, seed=seed),
            precision=bootstrap([m.precision for m in per_day], resamples=resamples, seed=seed),
            spearman=bootstrap([m.spearman for m in per_day], resamples=resamples, seed=seed),
            days=len(per_day),
        ))
    return Report(target=target, rows=tuple(rows), judged=tuple(v.day for v in days), skipped=dict(skipped))


def judge(views: Sequence[DayView], scorers: Mapping[str, Scorer], *, targets: Sequence[str] = TARGETS,
          k: int = K, resamples: int = RESAMPLES, seed: int = SEED, min_days: int = MIN_DAYS) -> tuple[Report, ...]:
    """``evaluate`` per target. The first target must be judgeable (``BacktestError`` otherwise); a later one
    with too few days comes back with no rows and its skip counts, to be reported as not judged."""
    reports: list[Report] = []
    for target in targets:
        if reports:
            days, skipped = judgeable(views, target)
            if len(days) < min_days:
                reports.append(Report(target=target, rows=(), judged=tuple(v.day for v in days),
                                      skipped=dict(skipped)))
                continue
        reports.append(evaluate(views, scorers, target=target, k=k, resamples=resamples, seed=seed,
                                min_days=min_days))
    return tuple(reports)


def skipped_note(skipped: Mapping[str, int]) -> str:
    if not skipped:
        return ""
    return " (" + "; ".join(f"{n} skipped: {reason}" for reason, n in skipped.items()) + ")"
