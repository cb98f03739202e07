"""The trend score: engagement velocity with time decay. Pure: no clock, no settings, no I/O.

For each candidate paper, at the moment ``now``:

    latest    = the newest metrics snapshot taken at or before ``now``; when
                there is none (a backfill, a late re-ingest, a saved day whose
                file name has no time), the earliest one taken after it: the
                best information there is, and marked as such (``measured``);
                its gains are taken as made by ``now`` (span = age), since most
                votes come in a paper's first day on the list, and a late
                fetch should not dilute them by the wait
    baseline  = the oldest snapshot within ``window_hours`` before ``latest``;
                with no such snapshot, the paper's listing time with zero
                engagement (a paper enters the daily list with nothing)
    span      = hours from baseline to latest (at least 1, so a fresh paper
                with a few votes does not explode)

    upvote part  = upvote_weight  * (upvotes gained  / span)     upvotes per hour
    comment part = comment_weight * (comments gained / span)     comments per hour
    star part    = star_weight    * log10(1 + GitHub stars)       stars on a log scale:
                   a repository's stars grow outside the list and span orders
                   of magnitude, so 10x more stars adds a constant
    decay        = 0.5 ** (age_hours / half_life_hours)           age since listing
    score        = (upvote part + comment part + star part) * decay

Ties are broken by upvotes (more first, from the newest snapshot known, even
one taken after ``now``), then by arXiv id, so the order is deterministic. Every part is kept on the result so the order can be explained
(``papermail rank --explain``) and turned into a "why it's trending" line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    fetched_at: datetime
    upvotes: int
    comments: int
    github_stars: int | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    arxiv_id: str
    listed_at: datetime  # when the paper entered the daily list
    snapshots: tuple[Snapshot, ...] = ()


@dataclass(frozen=True, slots=True)
class Weights:
    upvote: float = 1.0
    comment: float = 2.0
    star: float = 1.0
    half_life_hours: float = 36.0
    window_hours: float = 24.0


@dataclass(frozen=True, slots=True)
class TrendScore:
    arxiv_id: str
    score: float
    upvote_part: float
    comment_part: float
    star_part: float
    decay: float
    age_hours: float
    span_hours: float
    upvotes_gained: int
    comments_gained: int
    upvotes: int
    comments: int
    github_stars: int | None
    baseline: str  # "snapshot" (velocity between two fetches) or "listing" (since the paper was listed)
    measured: str = "on time"  # "on time" (a snapshot by ``now``), "later" (only one after it) or "never"
    known_upvotes: int = 0  # from the newest snapshot of all: what ties are broken by


MIN_SPAN_HOURS = 1.0


def _hours(delta_seconds: float) -> float:
    return delta_seconds / 3600.0


def score_candidate(candidate: Candidate, *, now: datetime, weights: Weights) -> TrendScore:
    """Score one paper as of ``now`` (see the module docstring for the formula)."""
    ordered = sorted(candidate.snapshots, key=lambda s: s.fetched_at)
    seen = [s for s in ordered if s.fetched_at <= now]
    measured = "on time"
    if not seen and ordered:
        seen, measured = ordered[:1], "later"  # nothing by ``now``: the first fetch after it, said so
    age = max(0.0, _hours((now - candidate.listed_at).total_seconds()))
    decay = 0.5 ** (age / weights.half_life_hours)
    if not seen:
        return TrendScore(candidate.arxiv_id, 0.0, 0.0, 0.0, 0.0, decay, age, 0.0, 0, 0, 0, 0, None, "none",
                          measured="never")

    latest = seen[-1]
    window_start = latest.fetched_at.timestamp() - weights.window_hours * 3600
    earlier = [s for s in seen[:-1] if s.fetched_at.timestamp() >= window_start]
    if earlier:
        base = earlier[0]
        base_at, base_up, base_comments, baseline = base.fetched_at, base.upvotes, base.comments, "snapshot"
    else:
        base_at, base_up, base_comments, baseline = candidate.listed_at, 0, 0, "listing"

    if measured == "later":  # its gains taken as made by ``now``: most votes come in the first day on the list
        span = max(MIN_SPAN_HOURS, age)
    else:
        span = max(MIN_SPAN_HOURS, _hours((latest.fetched_at - base_at).total_seconds()))
    up_gained = max(0, latest.upvotes - base_up)
    comments_gained = max(0, latest.comments - base_comments)
    upvote_part = weights.upvote * up_gained / span
    comment_part = weights.comment * comments_gained / span
    star_part = weights.star * math.log10(1 + max(0, latest.github_stars or 0))
    score = (upvote_part + comment_part + star_part) * decay
    return TrendScore(
        arxiv_id=candidate.arxiv_id,
        score=score,
        upvote_part=upvote_part,
        comment_part=comment_part,
        star_part=star_part,
        decay=decay,
        age_hours=age,
        span_hours=span,
        upvotes_gained=up_gained,
        comments_gained=comments_gained,
        upvotes=latest.upvotes,
        comments=latest.comments,
        github_stars=latest.github_stars,
        baseline=baseline,
        measured=measured,
        known_upvotes=ordered[-1].upvotes,
    )


def rank(candidates: list[Candidate], *, now: datetime, weights: Weights) -> list[TrendScore]:
    """All candidates scored and ordered best first, deterministically."""
    scores = [score_candidate(c, now=now, weights=weights) for c in candidates]
    # Round before comparing so float noise never decides an order; then the latest upvotes known, then id.
    return sorted(scores, key=lambda s: (-round(s.score, 9), -s.known_upvotes, s.arxiv_id))


def _span(hours: float) -> str:
    return f"{hours:.0f} h" if hours >= 1.5 else "1 h"


def why_trending(score: TrendScore) -> str:
    """A short human line naming what drives the score: the gains (the velocity the score is about) first,
    the bigger contribution of the two leading, then the paper's GitHub stars, a total."""
    phrases: list[tuple[float, str]] = []
    window = "since it was listed" if score.baseline == "listing" else f"in {_span(score.span_hours)}"
    if score.upvotes_gained:
        noun = "upvote" if score.upvotes_gained == 1 else "upvotes"
        phrases.append((score.upvote_part, f"+{score.upvotes_gained} {noun} {window}"))
    if score.comments_gained:
        noun = "comment" if score.comments_gained == 1 else "comments"
        phrases.append((score.comment_part, f"+{score.comments_gained} {noun}"))
    phrases.sort(key=lambda p: -p[0])
    if score.github_stars:
        phrases.append((score.star_part, f"{score.github_stars:,} GitHub stars"))
    if not phrases:
        return "New on the list"
    return " · ".join(text for _, text in phrases)


def explain_lines(scores: list[TrendScore]) -> list[str]:
    """Lines for ``papermail rank --explain``: each score as the sum of its parts, times decay."""
    lines = ["  #  arxiv id        score = (upvotes/h + comments/h + stars) × decay    age  why"]
    for i, s in enumerate(scores, 1):
        marked = s.arxiv_id + (LATE_MARK if s.measured == "later" else "")
        lines.append(
            f"{i:>3}  {marked:<15}{s.score:>6.3f} = ({s.upvote_part:>9.3f} + {s.comment_part:>10.3f}"
            f" + {s.star_part:>5.3f}) × {s.decay:.3f}  {s.age_hours:>4.0f} h  {why_trending(s)}"
        )
    if any(s.measured == "later" for s in scores):
        lines.append(f"  {LATE_MARK} no snapshot by the scoring moment: measured from the first one taken after it")
    if any(s.measured == "never" for s in scores):
        lines.append("  papers with no snapshot at all score 0 (ingest the day again to measure them)")
    return lines


LATE_MARK = "*"
