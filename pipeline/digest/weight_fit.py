"""Fitting papermail's weights on the first part of a history and judging them on the rest, never on the
days they were fitted on (``pipeline.digest.backtest`` describes the judging)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.digest.backtest import (
    FIT_SHARE,
    MIN_DAYS,
    TARGETS,
    DayView,
    Report,
    Scorer,
    judge,
    judgeable,
    papermail,
    skipped_note,
)
from pipeline.digest.metrics import RESAMPLES, SEED, K, ndcg_at, order
from pipeline.digest.rank import Weights, score_candidate
from pipeline.errors import BacktestError


@dataclass(frozen=True, slots=True)
class Grid:
    """The weights ``fit`` tries; the upvote weight stays 1 (only the ratios change an order)."""

    comment: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
    star: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    half_life_hours: tuple[float, ...] = (6.0, 12.0, 18.0, 24.0, 36.0, 48.0, 72.0)
    window_hours: tuple[float, ...] = (6.0, 12.0, 24.0, 48.0)

    @property
    def size(self) -> int:
        return len(self.comment) * len(self.star) * len(self.half_life_hours) * len(self.window_hours)


@dataclass(frozen=True, slots=True)
class Split:
    fit: tuple[DayView, ...]
    gap: tuple[DayView, ...]  # fit-part days whose horizon reaches into the judged part: left out of both
    held_out: tuple[DayView, ...]


def split(days: Sequence[DayView], *, horizon: dt.timedelta, share: float = FIT_SHARE) -> Split:
    """Judged days in time order: the first ``share`` to fit, the rest to judge on.

    A fit day whose horizon ends after the first judged day's send moment is dropped: what the fit learns
    was all known by the time the first judged issue would have gone out.
    """
    days = sorted(days, key=lambda v: v.day)
    cut = round(len(days) * share)
    head, held_out = days[:cut], days[cut:]
    if not held_out:
        return Split(tuple(head), (), ())
    first_send = held_out[0].send_at
    fit = tuple(v for v in head if v.send_at + horizon <= first_send)
    gap = tuple(v for v in head if v.send_at + horizon > first_send)
    return Split(fit, gap, tuple(held_out))


@dataclass(frozen=True, slots=True)
class Fit:
    weights: Weights
    ndcg: float  # its mean NDCG@k on the fit days
    tried: int


def _parts(view: DayView, half_life: float, window: float) -> list[tuple[float, float, float, float]]:
    """(upvotes/h, comments/h, log10(1+stars), decay) per candidate: the trend score's parts at unit weights."""
    unit = Weights(upvote=1.0, comment=1.0, star=1.0, half_life_hours=half_life, window_hours=window)
    parts = []
    for c in view.seen:
        s = score_candidate(c, now=view.send_at, weights=unit)
        parts.append((s.upvote_part, s.comment_part, s.star_part, s.decay))
    return parts


def fitted_score(part: tuple[float, float, float, float], *, comment: float, star: float) -> float:
    """The trend score from its unit-weight parts: (upvotes/h + comment·comments/h + star·stars) × decay.

    The formula is linear in the weights, so each (half-life, window) is scored once and every weight pair
    is a sum; tests check this equals ``score_candidate`` with those weights.
    """
    up, cm, st, decay = part
    return (up + comment * cm + star * st) * decay


def fit(days: Sequence[DayView], *, target: str = "upvotes", grid: Grid = Grid(), k: int = K,
        tick: Callable[[], None] | None = None) -> Fit:
    """The grid point with the best mean NDCG@k over ``days`` (the first best in grid order on a tie).

    ``tick`` is called after each (window, half-life) pair, for a progress bar.
    """
    if not days:
        raise BacktestError("no days to fit the weights on")
    best: tuple[float, Weights] | None = None
    gains = [[g.of(target) for g in v.gains] for v in days]
    ids = [v.ids for v in days]
    for window, half_life in itertools.product(grid.window_hours, grid.half_life_hours):
        parts = [_parts(v, half_life, window) for v in days]
        for comment, star in itertools.product(grid.comment, grid.star):
            total = 0.0
            for day_parts, day_gains, day_ids in zip(parts, gains, ids):
                scores = [fitted_score(p, comment=comment, star=star) for p in day_parts]
                total += ndcg_at(order(scores, day_ids), day_gains, k)
            mean = total / len(days)
            if best is None or mean > best[0] + 1e-12:
                best = (mean, Weights(upvote=1.0, comment=comment, star=star, half_life_hours=half_life,
                                      window_hours=window))
        if tick is not None:
            tick()
    assert best is not None
    return Fit(weights=best[1], ndcg=best[0], tried=grid.size)


@dataclass(frozen=True, slots=True)
class FitReport:
    split: Split
    fit: Fit
    reports: tuple[Report, ...]  # per target, on the held-out days only


def fit_and_judge(views: Sequence[DayView], scorers: Mapping[str, Scorer], *, horizon: dt.timedelta,
                  targets: Sequence[str] = TARGETS, grid: Grid = Grid(), share: float = FIT_SHARE, k: int = K,
                  resamples: int = RESAMPLES, seed: int = SEED,
                  tick: Callable[[], None] | None = None) -> FitReport:
    """Fit papermail's weights on the first part of the judgeable days (upvotes gained, NDCG@k), then judge
    every scorer, and papermail with the fitted weights (``papermail-fit``), on the held-out rest only."""
    days, skipped = judgeable(views, "upvotes")
    parts = split(days, horizon=horizon, share=share)
    if len(parts.fit) < MIN_DAYS or len(parts.held_out) < MIN_DAYS:
        raise BacktestError(
            f"--fit needs {MIN_DAYS} days to fit on and {MIN_DAYS} to judge on; the {len(days)} judgeable days "
            f"of {len(views)}{skipped_note(skipped)} give {len(parts.fit)} and {len(parts.held_out)}")
    chosen = fit(parts.fit, target="upvotes", grid=grid, k=k, tick=tick)
    held = {v.day for v in parts.held_out}
    reports = judge([v for v in views if v.day in held], {**scorers, "papermail-fit": papermail(chosen.weights)},
                    targets=targets, k=k, resamples=resamples, seed=seed, min_days=1)
    return FitReport(split=parts, fit=chosen, reports=reports)
