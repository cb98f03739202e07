"""The backtest's metrics on cases worked by hand, its intervals, and the rule that no score looks ahead."""

import dataclasses
import datetime as dt
import math
import random

import pytest

from pipeline.digest import backtest as bt
from pipeline.digest import metrics
from pipeline.digest import weight_fit as wf
from pipeline.digest.rank import Candidate, Snapshot, Weights, score_candidate
from pipeline.errors import BacktestError

DAY = dt.date(2025, 3, 21)
SEND = bt.send_moment(DAY, send_hour=7)  # 2025-03-22 07:00 UTC
HORIZON = dt.timedelta(days=3)
T0 = dt.datetime.combine(DAY, dt.time(0), tzinfo=dt.UTC)


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def ids(n: int) -> list[str]:
    return [f"2503.{i:05d}" for i in range(n)]


# --- metrics by hand ------------------------------------------------------------------------------


def test_the_send_moment_is_the_next_days_send_hour_and_the_runs_first_minutes():
    assert SEND == dt.datetime(2025, 3, 22, 7, 15, tzinfo=dt.UTC)


def test_ndcg_is_one_for_the_best_order_and_less_for_the_reverse():
    gains = [3.0, 2.0, 1.0]
    assert metrics.ndcg_at([0, 1, 2], gains) == pytest.approx(1.0)
    # reversed: (1/log2 2 + 2/log2 3 + 3/log2 4) / (3/log2 2 + 2/log2 3 + 1/log2 4)
    worst = (1 + 2 / math.log2(3) + 3 / 2) / (3 + 2 / math.log2(3) + 1 / 2)
    assert metrics.ndcg_at([2, 1, 0], gains) == pytest.approx(worst)
    assert worst == pytest.approx(0.7900, abs=1e-4)


def test_ndcg_counts_only_the_top_k_and_is_zero_when_nothing_was_gained():
    gains = [0.0, 0.0, 5.0]
    assert metrics.ndcg_at([0, 1, 2], gains, k=2) == 0.0  # the gainer is third, outside the top 2
    assert metrics.ndcg_at([2, 0, 1], gains, k=1) == pytest.approx(1.0)
    assert metrics.ndcg_at([0, 1, 2], [0.0, 0.0, 0.0]) == 0.0


def test_precision_is_the_share_of_the_top_k_among_the_biggest_gainers():
    gains = [10.0, 9.0, 8.0, 1.0, 0.0]
    assert metrics.precision_at([0, 1, 2, 3, 4], gains, k=3) == pytest.approx(1.0)
    assert metrics.precision_at([3, 4, 0, 1, 2], gains, k=3) == pytest.approx(1 / 3)
    # A tie with the k-th gain counts as a top gainer; a paper that gained nothing never does.
    assert metrics.precision_at([3, 1, 2], [5.0, 2.0, 2.0, 2.0], k=2) == pytest.approx(1.0)
    assert metrics.precision_at([0, 1], [0.0, 0.0, 0.0], k=2) == 0.0


def test_spearman_with_ties_at_their_average_rank():
    assert metrics.average_ranks([10, 20, 20, 30]) == [1.0, 2.5, 2.5, 4.0]
    assert metrics.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert metrics.spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    # ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): cov 4.5, variances 4.5 and 5
    assert metrics.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert metrics.spearman([7, 7, 7], [1, 2, 3]) == 0.0  # a constant score orders nothing


def test_orders_break_ties_by_arxiv_id():
    assert metrics.order([1.0, 2.0, 1.0], ["b", "c", "a"]) == [1, 2, 0]


def test_bootstrap_interval_holds_the_mean_and_is_the_same_every_time():
    rng = random.Random(1)
    values = [rng.random() for _ in range(40)]
    first = metrics.bootstrap(values)
    assert first.low <= first.mean <= first.high
    assert first.mean == pytest.approx(sum(values) / 40)
    assert first.high - first.low < 0.25
    assert metrics.bootstrap(values) == first
    assert metrics.bootstrap(values, seed=bt.SEED + 1) != first
    assert metrics.bootstrap([0.5] * 10) == metrics.Estimate(0.5, 0.5, 0.5)


# --- the truth ----------------------------------------------------------------------------------


def test_gain_is_read_from_the_snapshots_nearest_at_or_before_each_end():
    c = Candidate("2503.00001", h(2), (Snapshot(h(20), 10, 1, 5), Snapshot(h(30), 25, 2, 9),
                                       Snapshot(h(99), 60, 4, 20), Snapshot(h(120), 99, 9, 40)))
    # send at h(31): the h(30) snapshot; send + 3 days = h(103): the h(99) one.
    assert bt.gained(c, start=SEND, end=SEND + HORIZON) == bt.Gain(upvotes=35, comments=2, stars=11)


def test_gain_counts_from_zero_without_a_snapshot_by_the_send_moment_and_never_below_zero():
    c = Candidate("2503.00002", h(2), (Snapshot(h(40), 12, 3, None), Snapshot(h(80), 11, 5, 7)))
    assert bt.gained(c, start=SEND, end=SEND + HORIZON) == bt.Gain(upvotes=11, comments=5, stars=7)
    assert bt.gained(Candidate("x", h(2)), start=SEND, end=SEND + HORIZON) == bt.Gain(0, 0, 0)
    dropped = Candidate("2503.00003", h(2), (Snapshot(h(30), 12, 3), Snapshot(h(80), 10, 3)))
    assert bt.gained(dropped, start=SEND, end=SEND + HORIZON).upvotes == 0


# --- the scorers ----------------------------------------------------------------------------------


def test_the_reference_scores_by_hand():
    c = Candidate("2503.00004", h(1), (Snapshot(h(7), 5, 0, 100), Snapshot(h(19), 41, 2, 124)))
    now = h(31)
    assert bt.total_upvotes(c, now) == 41
    assert bt.hn_gravity(c, now) == pytest.approx(40 / (30 + 2) ** 1.8)
    assert bt.stars_per_hour(c, now) == pytest.approx(24 / 12)  # 100 -> 124 stars in 12 h
    w = Weights()
    assert bt.papermail(w)(c, now) == score_candidate(c, now=now, weights=w).score
    alone = Candidate("2503.00005", h(1), (Snapshot(h(5), 3, 0, 8),))
    assert bt.stars_per_hour(alone, h(9)) == pytest.approx(8 / 4)  # one snapshot: since listing, from zero
    assert bt.stars_per_hour(Candidate("2503.00006", h(1), (Snapshot(h(5), 3, 0),)), h(9)) == 0


def test_fitted_scores_are_the_trend_score_with_those_weights():
    rng = random.Random(3)
    for n in range(30):
        snaps = tuple(Snapshot(h(2 + 3 * i), 2 * i + rng.randint(0, 9 * i), rng.randint(0, i),
                               rng.choice([None, rng.randint(0, 5000)])) for i in range(rng.randint(0, 9)))
        c = Candidate(f"2503.{n:05d}", h(rng.uniform(0, 5)), snaps)
        view = bt.DayView(DAY, SEND, (c,), (bt.Gain(0, 0, 0),), True)
        for comment, star, half_life, window in [(0, 0, 6, 6), (2, 1, 36, 24), (8, 0.25, 72, 48)]:
            [part] = wf._parts(view, half_life, window)
            weights = Weights(upvote=1, comment=comment, star=star, half_life_hours=half_life, window_hours=window)
            assert wf.fitted_score(part, comment=comment, star=star) == pytest.approx(
                score_candidate(c, now=SEND, weights=weights).score, rel=1e-12, abs=1e-12)


# --- no look-ahead --------------------------------------------------------------------------------


def paper(rng: random.Random, arxiv_id: str, day: dt.date, *, appeal: float | None = None) -> Candidate:
    """A candidate fetched every 3 hours from its listing to five days later, its upvotes growing at a rate
    that fades; a paper's appeal sets both its early and its later gains."""
    listed = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(hours=rng.uniform(0, 12))
    appeal = appeal if appeal is not None else rng.lognormvariate(1.0, 1.0)
    snaps, up, cm, stars = [], 0, 0, rng.choice([None, rng.randint(0, 300)])
    at = listed + dt.timedelta(hours=3)
    while at <= listed + dt.timedelta(days=5):
        age = (at - listed).total_seconds() / 3600
        up += rng.randint(0, max(1, round(3 * appeal * math.exp(-age / 30))))
        cm += rng.random() < 0.05 * appeal
        stars = None if stars is None else stars + rng.randint(0, 3)
        snaps.append(Snapshot(at, up, cm, stars))
        at += dt.timedelta(hours=3)
    return Candidate(arxiv_id, listed, tuple(snaps))


def history_day(day: dt.date, candidates: list[Candidate]) -> bt.HistoryDay:
    last = max((s.fetched_at for c in candidates for s in c.snapshots), default=None)
    return bt.HistoryDay(day=day, send_at=bt.send_moment(day, send_hour=7), candidates=tuple(candidates),
                         last_fetch=last)


def a_day(seed: int = 5, n: int = 14, day: dt.date = DAY) -> bt.HistoryDay:
    rng = random.Random(seed)
    return history_day(day, [paper(rng, f"{day:%y%m}.{day.day:02d}{i:03d}", day) for i in range(n)])


def scores_of(view: bt.DayView) -> dict[str, list[float]]:
    return {name: bt.score_view(view, scorer) for name, scorer in bt.standard_scorers(Weights()).items()}


def test_a_snapshot_after_the_send_moment_changes_no_score_of_that_day_but_changes_the_truth():
    day = a_day()
    before = bt.view_of(day, horizon=HORIZON)
    target = day.candidates[3]
    later = [s for s in target.snapshots if day.send_at < s.fetched_at <= day.send_at + HORIZON]
    assert later, "the example needs snapshots after the send moment"
    # One added just after the send moment, and the one that ends the horizon changed.
    added = Snapshot(day.send_at + dt.timedelta(minutes=1), 10_000, 500, 90_000)
    changed = dataclasses.replace(later[-1], upvotes=later[-1].upvotes + 7_777)
    edited = dataclasses.replace(target, snapshots=tuple(
        changed if s is later[-1] else s for s in target.snapshots) + (added,))
    after = bt.view_of(dataclasses.replace(day, candidates=day.candidates[:3] + (edited,) + day.candidates[4:]),
                       horizon=HORIZON)
    assert scores_of(after) == scores_of(before)
    assert after.seen == before.seen
    assert after.gains[3] != before.gains[3]
    assert after.gains[:3] == before.gains[:3] and after.gains[4:] == before.gains[4:]


def test_a_scorer_that_would_cheat_only_ever_gets_what_was_known_at_the_send_moment():
    def peek(candidate: Candidate, now: dt.datetime) -> float:  # ignores ``now``: the newest count it is given
        return float(max((s.upvotes for s in candidate.snapshots), default=0))

    view = bt.view_of(a_day(), horizon=HORIZON)
    assert all(s.fetched_at <= view.send_at for c in view.seen for s in c.snapshots)
    assert bt.score_view(view, peek) == bt.score_view(view, bt.total_upvotes)


def test_a_paper_fetched_only_after_the_send_moment_scores_nothing_that_day():
    # Outside the backtest, the trend score falls back on the first snapshot after ``now`` when there is none
    # before it; the backtest's view of the day holds no such snapshot, so there is nothing to fall back on.
    day = history_day(DAY, [Candidate("2503.00009", h(3), (Snapshot(SEND + dt.timedelta(hours=2), 80, 4, 9),))])
    view = bt.view_of(day, horizon=HORIZON)
    assert view.seen[0].snapshots == ()
    assert bt.score_view(view, bt.papermail(Weights())) == [0.0]
    assert view.gains[0] == bt.Gain(80, 4, 9)


# --- judging, fitting -----------------------------------------------------------------------------


def days_of_history(n: int, seed: int = 11) -> list[bt.DayView]:
    return [bt.view_of(a_day(seed + i, 14, DAY + dt.timedelta(days=i)), horizon=HORIZON) for i in range(n)]


def test_days_that_cannot_be_judged_are_skipped_and_counted():
    good = days_of_history(4)
    few = bt.view_of(a_day(1, 5, DAY + dt.timedelta(days=10)), horizon=HORIZON)
    cut = a_day(2, 12, DAY + dt.timedelta(days=11))
    short = bt.view_of(dataclasses.replace(cut, last_fetch=cut.send_at + HORIZON - dt.timedelta(hours=1)),
                       horizon=HORIZON)
    flat_day = a_day(3, 12, DAY + dt.timedelta(days=12))
    flat = bt.view_of(dataclasses.replace(flat_day, candidates=tuple(
        dataclasses.replace(c, snapshots=tuple(s for s in c.snapshots if s.fetched_at <= flat_day.send_at))
        for c in flat_day.candidates), last_fetch=flat_day.last_fetch), horizon=HORIZON)
    report = bt.evaluate(good + [few, short, flat], bt.standard_scorers(Weights()))
    assert report.judged == tuple(v.day for v in good)
    assert report.skipped == {bt.FEW_PAPERS: 1, bt.SHORT_HISTORY: 1, bt.NO_GAIN: 1}
    assert [r.scorer for r in report.rows] == ["upvotes", "hn-gravity", "stars-per-hour", "papermail"]
    for row in report.rows:
        assert row.days == 4
        for e in (row.ndcg, row.precision, row.spearman):
            assert e.low <= e.mean <= e.high
    with pytest.raises(BacktestError, match="only 0 of 2 days can be judged .*fewer than 10 papers"):
        bt.evaluate([few, few], bt.standard_scorers(Weights()))


def test_a_score_that_knows_the_answer_gets_full_marks():
    views = days_of_history(3)
    truth = {c.arxiv_id: g.upvotes for v in views for c, g in zip(v.seen, v.gains)}
    report = bt.evaluate(views, {"oracle": lambda c, now: truth[c.arxiv_id]})
    [row] = report.rows
    assert row.ndcg.mean == pytest.approx(1.0) and row.precision.mean == pytest.approx(1.0)
    assert row.spearman.mean == pytest.approx(1.0)


def test_the_split_keeps_time_order_and_drops_fit_days_whose_horizon_reaches_the_judged_part():
    views = days_of_history(20)
    parts = wf.split(views, horizon=HORIZON, share=0.6)
    assert [v.day for v in parts.held_out] == [v.day for v in views[12:]]
    first_send = parts.held_out[0].send_at
    assert all(v.send_at + HORIZON <= first_send for v in parts.fit)
    assert [v.day for v in parts.fit + parts.gap] == [v.day for v in views[:12]]
    # The 11th and 12th days: their three-day horizons end after the 13th's send moment (the 10th's, at it).
    assert [v.day for v in parts.gap] == [views[10].day, views[11].day]


SMALL_GRID = wf.Grid(comment=(0.0, 2.0, 8.0), star=(0.0, 1.0), half_life_hours=(6.0, 36.0), window_hours=(6.0, 24.0))


def corrupt(view: bt.DayView, rng: random.Random) -> bt.DayView:
    """The day's snapshots up to the send moment scrambled: any score of it would change."""
    seen = tuple(dataclasses.replace(c, snapshots=tuple(
        dataclasses.replace(s, upvotes=rng.randint(0, 999), comments=rng.randint(0, 99)) for s in c.snapshots))
        for c in view.seen)
    return dataclasses.replace(view, seen=seen)


def test_fitting_never_sees_the_held_out_days():
    views = days_of_history(15)
    scorers = bt.standard_scorers(Weights())
    honest = wf.fit_and_judge(views, scorers, horizon=HORIZON, grid=SMALL_GRID, resamples=200)
    held = {v.day for v in honest.split.held_out}
    assert held and not held & {v.day for v in honest.split.fit}
    rng = random.Random(0)
    scrambled = [corrupt(v, rng) if v.day in held else v for v in views]
    again = wf.fit_and_judge(scrambled, scorers, horizon=HORIZON, grid=SMALL_GRID, resamples=200)
    assert again.fit == honest.fit
    assert again.split.fit == honest.split.fit
    # ... while the held-out figures, computed on the scrambled days, did change.
    assert again.reports[0].rows != honest.reports[0].rows
    assert [r.scorer for r in honest.reports[0].rows][-1] == "papermail-fit"
    assert all(r.days == len(held) for r in honest.reports[0].rows)


def test_fit_picks_the_best_grid_point_on_the_fit_days():
    views = days_of_history(6)
    chosen = wf.fit(views, grid=SMALL_GRID)
    assert chosen.tried == SMALL_GRID.size == 24

    def mean_ndcg(w: Weights) -> float:
        scorer = bt.papermail(w)
        return sum(metrics.ndcg_at(metrics.order(bt.score_view(v, scorer), v.ids), [g.upvotes for g in v.gains])
                   for v in views) / len(views)

    assert chosen.ndcg == pytest.approx(mean_ndcg(chosen.weights))
    every = [Weights(1, c, s, hl, win) for c in SMALL_GRID.comment for s in SMALL_GRID.star
             for hl in SMALL_GRID.half_life_hours for win in SMALL_GRID.window_hours]
    assert chosen.ndcg >= max(mean_ndcg(w) for w in every) - 1e-9


def test_fit_needs_days_on_both_sides():
    with pytest.raises(BacktestError, match="--fit needs 3 days to fit on and 3 to judge on"):
        wf.fit_and_judge(days_of_history(5), bt.standard_scorers(Weights()), horizon=HORIZON, grid=SMALL_GRID)


def test_a_count_no_paper_gained_on_is_reported_as_not_judged_while_the_others_are():
    def starless(view: bt.DayView) -> bt.DayView:
        return dataclasses.replace(view, gains=tuple(dataclasses.replace(g, stars=0) for g in view.gains))

    upvotes, comments, stars = bt.judge([starless(v) for v in days_of_history(4)], bt.standard_scorers(Weights()))
    assert upvotes.rows and comments.rows
    assert stars.rows == () and stars.skipped == {bt.NO_GAIN: 4}
