import math
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.digest.rank import Candidate, Snapshot, Weights, explain_lines, rank, score_candidate, why_trending

T0 = datetime(2025, 3, 21, 0, 0, tzinfo=UTC)
W = Weights(upvote=1.0, comment=2.0, star=1.0, half_life_hours=36.0, window_hours=24.0)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_velocity_between_two_snapshots_with_decay_by_hand():
    # +24 upvotes and +3 comments over 12 h, 99 stars, listed 36 h before now (one half-life).
    c = Candidate("2501.00001", listed_at=h(0), snapshots=(Snapshot(h(6), 10, 1, 50), Snapshot(h(18), 34, 4, 99)))
    s = score_candidate(c, now=h(36), weights=W)
    assert s.baseline == "snapshot"
    assert s.span_hours == pytest.approx(12.0)
    assert s.upvote_part == pytest.approx(2.0)  # 24 / 12
    assert s.comment_part == pytest.approx(0.5)  # 2 * 3 / 12
    assert s.star_part == pytest.approx(2.0)  # log10(100)
    assert s.decay == pytest.approx(0.5)
    assert s.score == pytest.approx(2.25)  # (2 + 0.5 + 2) * 0.5


def test_single_snapshot_counts_totals_since_listing():
    # One fetch: the paper is taken to have started from zero when it was listed.
    c = Candidate("2501.00002", listed_at=h(2), snapshots=(Snapshot(h(10), 16, 0, None),))
    s = score_candidate(c, now=h(10), weights=W)
    assert s.baseline == "listing"
    assert s.upvote_part == pytest.approx(2.0)  # 16 / 8 h
    assert s.star_part == 0
    assert s.decay == pytest.approx(0.5 ** (8 / 36))
    assert s.score == pytest.approx(2.0 * 0.5 ** (8 / 36))


def test_no_snapshot_history_scores_zero_but_is_ranked():
    c = Candidate("2501.00003", listed_at=h(0))
    s = score_candidate(c, now=h(5), weights=W)
    assert s.score == 0 and s.baseline == "none"
    assert why_trending(s) == "New on the list"


def test_span_is_at_least_one_hour():
    # Fetched 6 minutes after listing with 5 upvotes: 5/h, not 50/h.
    c = Candidate("2501.00004", listed_at=h(0), snapshots=(Snapshot(h(0.1), 5, 0),))
    assert score_candidate(c, now=h(0.1), weights=W).upvote_part == pytest.approx(5.0)


def test_snapshots_after_now_are_ignored():
    c = Candidate("2501.00005", listed_at=h(0), snapshots=(Snapshot(h(4), 8, 0), Snapshot(h(30), 500, 0)))
    s = score_candidate(c, now=h(4), weights=W)
    assert s.upvotes == 8 and s.upvote_part == pytest.approx(2.0)


def test_baseline_is_the_oldest_snapshot_inside_the_window():
    snaps = (Snapshot(h(0), 0, 0), Snapshot(h(20), 100, 0), Snapshot(h(30), 130, 0), Snapshot(h(40), 150, 0))
    s = score_candidate(Candidate("2501.00006", h(0), snaps), now=h(40), weights=W)
    # window 24 h before h(40) starts at h(16): baseline h(20), +50 in 20 h.
    assert s.span_hours == pytest.approx(20.0)
    assert s.upvote_part == pytest.approx(2.5)


def test_decay_prefers_the_younger_of_two_equal_papers():
    old = Candidate("2501.00007", h(0), (Snapshot(h(1), 10, 0),))
    young = Candidate("2501.00008", h(48), (Snapshot(h(49), 10, 0),))
    order = rank([old, young], now=h(49), weights=W)
    assert [s.arxiv_id for s in order] == ["2501.00008", "2501.00007"]
    assert order[1].score == pytest.approx(order[0].score * 0.5 ** (48 / 36))


def test_ties_are_broken_by_upvotes_then_id():
    a = Candidate("2501.00010", h(0))
    b = Candidate("2501.00009", h(0))
    c = Candidate("2501.00011", h(0), (Snapshot(h(0), 0, 0, None),))
    order = [s.arxiv_id for s in rank([a, c, b], now=h(1), weights=W)]
    assert order == ["2501.00009", "2501.00010", "2501.00011"]


def test_star_weight_is_logarithmic():
    s10 = score_candidate(Candidate("a", h(0), (Snapshot(h(0), 0, 0, 9),)), now=h(0), weights=W)
    s1000 = score_candidate(Candidate("b", h(0), (Snapshot(h(0), 0, 0, 999),)), now=h(0), weights=W)
    assert s10.star_part == pytest.approx(1.0) and s1000.star_part == pytest.approx(3.0)
    assert math.isclose(s1000.score - s10.score, 2.0)


def test_why_line_leads_with_the_gains_biggest_first_and_ends_with_the_stars():
    c = Candidate("2501.00012", h(0), (Snapshot(h(6), 10, 1, 50), Snapshot(h(18), 34, 4, 2450)))
    s = score_candidate(c, now=h(18), weights=W)
    assert s.star_part > s.upvote_part  # the stars weigh most, but they are a total, not the trend
    assert why_trending(s) == "+24 upvotes in 12 h · +3 comments · 2,450 GitHub stars"
    c = Candidate("2501.00013", h(0), (Snapshot(h(6), 10, 1, 0), Snapshot(h(18), 11, 9, 0)))
    assert why_trending(score_candidate(c, now=h(18), weights=W)) == "+8 comments · +1 upvote in 12 h"


# --- the best information available ------------------------------------------------------------


def test_with_no_snapshot_by_now_the_first_one_after_it_is_used_and_marked():
    c = Candidate("2501.00010", listed_at=h(2), snapshots=(Snapshot(h(200), 400, 8, 30), Snapshot(h(100), 300, 6)))
    s = score_candidate(c, now=h(26), weights=W)
    assert s.measured == "later" and s.baseline == "listing"
    assert s.upvotes == 300 and s.span_hours == pytest.approx(24.0)  # the earliest later fetch, as made by now
    assert s.upvote_part == pytest.approx(300 / 24) and s.decay == pytest.approx(0.5 ** (24 / 36))
    assert s.known_upvotes == 400
    assert why_trending(s) == "+300 upvotes since it was listed · +6 comments"
    assert any(line.startswith("  * no snapshot by the scoring moment") for line in explain_lines([s]))
    assert explain_lines([s])[1].split()[1:3] == ["2501.00010*", f"{s.score:.3f}"]


def test_a_snapshot_by_now_always_wins_over_a_later_one():
    c = Candidate("2501.00011", listed_at=h(0), snapshots=(Snapshot(h(4), 8, 0), Snapshot(h(30), 500, 0)))
    s = score_candidate(c, now=h(4), weights=W)
    assert s.measured == "on time" and s.upvotes == 8 and s.known_upvotes == 500


def test_a_day_measured_only_later_ranks_by_what_the_papers_gained():
    late = [Candidate(f"2501.0002{i}", listed_at=h(i), snapshots=(Snapshot(h(24 * 30), votes, 0),))
            for i, votes in enumerate([68, 500, 12, 500, 3])]
    order = [s.arxiv_id for s in rank(late, now=h(31), weights=W)]
    assert order[:2] == ["2501.00023", "2501.00021"] and order[-1] == "2501.00024"  # listed later, same 500


def test_ties_are_broken_by_the_newest_figures_known():
    same = (Snapshot(h(1), 10, 0),)
    a = Candidate("2501.00031", h(0), (*same, Snapshot(h(50), 20, 0)))
    b = Candidate("2501.00032", h(0), (*same, Snapshot(h(50), 90, 0)))
    assert [s.arxiv_id for s in rank([a, b], now=h(2), weights=W)] == ["2501.00032", "2501.00031"]


def test_a_paper_never_measured_is_said_to_be():
    s = score_candidate(Candidate("2501.00033", h(0)), now=h(5), weights=W)
    assert s.measured == "never"
    assert any("no snapshot at all" in line for line in explain_lines([s]))
