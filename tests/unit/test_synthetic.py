"""The synthetic history: the real format, the same bytes for a seed, and the shape it claims to have."""

import datetime as dt
import json
import statistics
from collections import defaultdict

import pytest

from pipeline.ingest import files, synthetic
from pipeline.ingest.hf import normalize_arxiv_id, parse_day, parse_timestamp

DAYS = 12  # long enough for some papers to be listed again


@pytest.fixture(scope="module")
def history() -> list[tuple[str, bytes]]:
    return list(synthetic.snapshots(days=DAYS, seed=7))


@pytest.fixture(scope="module")
def series(history: list[tuple[str, bytes]]) -> dict[str, list[tuple[dt.datetime, int, int, int | None]]]:
    """Per paper, (fetched at, upvotes, comments, stars) at each fetch that showed it."""
    seen: dict[str, list[tuple[dt.datetime, int, int, int | None]]] = defaultdict(list)
    for name, raw in history:
        at = files.fetched_at_from_name(name)
        assert at is not None
        for item in json.loads(raw):
            arxiv_id = normalize_arxiv_id(item["paper"]["id"])
            assert arxiv_id is not None
            seen[arxiv_id].append((at, item["paper"]["upvotes"], item["numComments"], item["paper"].get("githubStars")))
    return seen


@pytest.fixture(scope="module")
def listed(history: list[tuple[str, bytes]]) -> dict[str, list[tuple[str, dt.datetime]]]:
    """Per paper, every (id as shown, submittedOnDailyAt) it was listed with."""
    found: dict[str, set[tuple[str, dt.datetime]]] = defaultdict(set)
    for _, raw in history:
        for item in json.loads(raw):
            shown = item["paper"]["id"]
            at = parse_timestamp(item["paper"]["submittedOnDailyAt"])
            assert at is not None
            found[normalize_arxiv_id(shown) or ""].add((shown, at))
    return {k: sorted(v, key=lambda x: x[1]) for k, v in found.items()}


def test_every_file_is_a_snapshot_the_ingest_reads_whole(history):
    assert history, "nothing written"
    for name, raw in history:
        day, at = files.day_from_name(name), files.fetched_at_from_name(name)
        assert day is not None and at is not None and at.date() == day
        assert at.minute == 0 and at.hour % synthetic.EVERY_HOURS == 0
        result = parse_day(raw, day=day, source="file")
        assert result.skipped == []
        assert len(result.papers) == len(json.loads(raw))
        assert {p.organization for p in result.papers} == {synthetic.SYNTHETIC_ORGANIZATION}
    fetched = [files.fetched_at_from_name(name) for name, _ in history]
    assert fetched == sorted(fetched)
    last = dt.datetime.combine(synthetic.DEFAULT_START + dt.timedelta(days=DAYS + synthetic.FOLLOW_DAYS - 1),
                               dt.time(21), tzinfo=dt.UTC)
    assert fetched[-1] == last  # the last day's list is followed as long as the first one's


def test_items_carry_the_fields_of_the_real_list():
    sample = json.loads(files.sample_files()[0].read_bytes())[0]
    name, raw = next(synthetic.snapshots(days=1, seed=7))
    item = json.loads(raw)[0]
    assert set(sample) == set(item)
    assert set(sample["paper"]) - {"githubRepo", "githubStars"} <= set(item["paper"])


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(history):
    assert list(synthetic.snapshots(days=DAYS, seed=7)) == history
    assert list(synthetic.snapshots(days=DAYS, seed=8)) != history


def test_a_file_shows_what_was_listed_by_its_fetch_and_no_older_than_the_days_it_follows(history):
    for name, raw in history:
        at = files.fetched_at_from_name(name)
        assert at is not None
        for item in json.loads(raw):
            entered = parse_timestamp(item["paper"]["submittedOnDailyAt"])
            assert entered is not None and entered <= at
            assert (at.date() - entered.date()).days <= synthetic.FOLLOW_DAYS


def test_papers_arrive_every_day_twenty_to_sixty_of_them(listed):
    per_day: dict[dt.date, int] = defaultdict(int)
    for entries in listed.values():
        per_day[entries[0][1].date()] += 1
    assert sorted(per_day) == [synthetic.DEFAULT_START + dt.timedelta(days=i) for i in range(DAYS)]
    assert all(20 <= n <= 60 for n in per_day.values())
    hours = [entries[0][1].hour for entries in listed.values()]
    assert min(hours) == 0 and max(hours) >= 15  # at various hours, before the day's last fetch
    assert max(hours) < synthetic.LAST_LISTING_HOUR


def test_counts_never_fall(series):
    for points in series.values():
        for (_, u0, c0, s0), (_, u1, c1, s1) in zip(points, points[1:]):
            assert u1 >= u0 and c1 >= c0 and (s0 is None or s1 >= s0)


def test_popularity_is_heavy_tailed(series):
    final = sorted(points[-1][1] for points in series.values())
    top = final[-len(final) // 10:]
    assert sum(top) / sum(final) > 0.35  # the top tenth holds more than a third of the upvotes
    assert final[-1] > 10 * statistics.median(final)


def count_at(points, moment: dt.datetime, column: int) -> int:
    before = [p[column] or 0 for p in points if p[0] <= moment]
    return before[-1] if before else 0


def gained_between(series, listed, start_h: float, end_h: float, column: int) -> int:
    """Summed over papers: the count gained from start_h to end_h hours after their first listing."""
    total = 0
    for arxiv_id, points in series.items():
        at0 = listed[arxiv_id][0][1]
        total += (count_at(points, at0 + dt.timedelta(hours=end_h), column)
                  - count_at(points, at0 + dt.timedelta(hours=start_h), column))
    return total


def test_upvotes_come_in_a_burst_and_stars_slower_and_longer(series, listed):
    # From the first fetch after listing (within 3 h: a repository has stars from before it was listed).
    early, late = gained_between(series, listed, 3, 12, 1), gained_between(series, listed, 48, 57, 1)
    assert early > 3 * late  # upvotes: nine hours after the first fetch against nine hours two days later
    up_share = gained_between(series, listed, 0, 12, 1) / gained_between(series, listed, 0, 96, 1)
    assert up_share > 0.5  # most of four days' upvotes arrive in the first twelve hours
    up_later = gained_between(series, listed, 3, 12, 1) / gained_between(series, listed, 3, 96, 1)
    star_later = gained_between(series, listed, 3, 12, 3) / gained_between(series, listed, 3, 96, 3)
    assert star_later < up_later / 2


def test_some_papers_are_listed_again_on_a_later_day_some_as_a_new_version(listed):
    again = {k: v for k, v in listed.items() if len({at.date() for _, at in v}) > 1}
    assert again
    assert any(shown.endswith("v2") for entries in again.values() for shown, _ in entries)
    assert all(entries[0][0] == arxiv_id for arxiv_id, entries in again.items())  # first listed without a version
