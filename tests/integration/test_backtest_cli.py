"""synthesize -> ingest -> backtest through the real command, and the history loader on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import pytest
from sqlmodel import Session

from pipeline import service
from pipeline.digest import backtest as bt
from pipeline.digest import history
from pipeline.digest.issues import RankRequest, candidates_for
from pipeline.digest.rank import Weights
from pipeline.errors import PapermailError
from pipeline.ingest import synthetic
from tests.support.cli import papermail

DAYS = 12  # enough for --fit: five days to fit on, two left out, five to judge on
FIRST, LAST = synthetic.DEFAULT_START, synthetic.DEFAULT_START + dt.timedelta(days=DAYS - 1)
ROW = re.compile(r"^  (\S+) +(-?\d\.\d{3}) \[ *(-?\d\.\d{3}), +(-?\d\.\d{3})\]"
                 r" +(-?\d\.\d{3}) \[ *(-?\d\.\d{3}), +(-?\d\.\d{3})\]"
                 r" +(-?\d\.\d{3}) \[ *(-?\d\.\d{3}), +(-?\d\.\d{3})\] +(\d+)$")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where a synthetic history was written and ingested by the command, as an operator would."""
    cwd = tmp_path_factory.mktemp("backtest")
    made = papermail(cwd, "synthesize", "--out", "history", "--days", str(DAYS))
    assert "synthetic" in made.stdout and "test the backtest's machinery, not the world" in made.stdout
    ingested = papermail(cwd, "ingest", "--source", "file:history")
    assert f"{DAYS + synthetic.FOLLOW_DAYS} days of snapshots" in ingested.stdout
    assert "skipped" not in ingested.stderr
    return cwd


def rows(text: str, after: str) -> dict[str, tuple[float, ...]]:
    """The table printed after the line starting with ``after``: scorer -> 9 figures and the days."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    found = {}
    for line in lines[start + 2:]:
        match = ROW.match(line)
        if not match:
            break
        found[match[1]] = tuple(float(x) for x in match.groups()[1:])
    return found


def test_the_backtest_prints_every_score_with_intervals_on_the_shipped_history(workdir):
    result = papermail(workdir, "backtest")
    text = result.stdout
    assert f"history: {DAYS} days listed {FIRST} to {LAST}" in text
    assert "synthetic" in text and "not the world" in text
    assert f"judged: {DAYS} of {DAYS} days" in text
    header = next(line for line in text.splitlines() if "NDCG@10" in line)
    assert header.split() == ["scorer", "NDCG@10", "precision@10", "Spearman", "ρ", "days"]
    for target in ("upvotes gained", "comments gained", "GitHub stars gained"):
        table = rows(text, f"against {target}")
        assert list(table) == ["upvotes", "hn-gravity", "stars-per-hour", "papermail"], target
        for figures in table.values():
            for mean, low, high in (figures[0:3], figures[3:6], figures[6:9]):
                assert low <= mean <= high
            assert figures[9] == DAYS
    # The columns line up: every row of a table is as long as the others.
    table_lines = [line for line in text.splitlines() if ROW.match(line)]
    assert len({len(line) for line in table_lines}) == 1
    assert "Traceback" not in result.stderr


def test_fit_reports_the_chosen_weights_and_judges_on_the_held_out_days_only(workdir):
    text = papermail(workdir, "backtest", "--fit").stdout
    assert f"usable: {DAYS} of {DAYS} days" in text
    fit_line = next(line for line in text.splitlines() if line.startswith("fit: "))
    assert "tried on 5 days (2025-01-06 to 2025-01-10)" in fit_line and "2 days after them left out" in fit_line
    assert re.search(r"^chosen: +upvote 1, comment [\d.]+, star [\d.]+, half-life \d+ h, window \d+ h", text, re.M)
    assert "configured: upvote 1, comment 2, star 1, half-life 36 h, window 24 h" in text
    assert "held out: 5 days (2025-01-13 to 2025-01-17)" in text
    table = rows(text, "against upvotes gained")
    assert list(table) == ["upvotes", "hn-gravity", "stars-per-hour", "papermail", "papermail-fit"]
    assert all(figures[9] == 5 for figures in table.values())


def test_a_range_is_judged_alone_and_plot_writes_a_png_of_the_figures(workdir):
    pytest.importorskip("matplotlib")
    text = papermail(workdir, "backtest", "--from", "2025-01-08", "--to", "2025-01-12", "--plot", "figures.png").stdout
    assert "history: 5 days listed 2025-01-08 to 2025-01-12" in text and "judged: 5 of 5 days" in text
    assert "plot: figures.png" in text
    assert (workdir / "figures.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_history_ends_in_one_line(tmp_path):
    proc = papermail(tmp_path, "backtest", "--fit", check=False)
    assert proc.returncode == 65
    assert proc.stderr.strip().splitlines()[-1].startswith("error: no stored history to backtest: ingest snapshots "
                                                           "first"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_too_few_days_ends_in_one_line(tmp_path):
    papermail(tmp_path, "ingest", "--source", "sample")  # one real day, and nothing fetched after its send moment
    proc = papermail(tmp_path, "backtest", check=False)
    assert proc.returncode == 65
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: only 0 of 1 days can be judged (1 skipped: the history ends before the horizon")
    assert "Traceback" not in proc.stderr


def test_synthesize_refuses_a_folder_that_holds_a_history(workdir):
    proc = papermail(workdir, "synthesize", "--out", "history", "--days", "2", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "error: history already holds snapshot files; write the " \
                                                   "history to an empty folder"


def test_plot_without_matplotlib_names_the_extra(monkeypatch):
    from pipeline.cli import backtest as command

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PapermailError, match=r"--plot needs matplotlib, .*pip install 'papermail\[bench\]'"):
        command._matplotlib()


# --- the loader, on both databases ------------------------------------------------------------------


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("history")
    for name, raw in synthetic.snapshots(days=6, seed=3):
        (folder / name).write_bytes(raw)
    return folder


def test_the_loader_sees_what_the_daily_issue_sees_up_to_the_send_moment(make_settings, database_url, snapshot_dir):
    cfg = make_settings(database_url=database_url)
    list(service.ingest_history(cfg, snapshot_dir))
    horizon = dt.timedelta(days=3)
    start = synthetic.DEFAULT_START
    with Session(service.engine(cfg)) as session:
        assert history.stored_range(session) == (start, start + dt.timedelta(days=5))
        days = list(history.load_days(session, first=start - dt.timedelta(days=1), last=start + dt.timedelta(days=5),
                                      send_hour=cfg.send_hour, horizon=horizon))
        assert [d.day for d in days] == [start + dt.timedelta(days=i) for i in range(-1, 6)]
        assert days[0].candidates == () and days[0].last_fetch is None
        for day in days[1:]:
            issue, _ = candidates_for(session, RankRequest(day=day.day, as_of=day.send_at, weights=Weights()))
            view = bt.view_of(day, horizon=horizon)
            expected = {c.arxiv_id: bt.seen_at(c, day.send_at) for c in issue}
            assert {c.arxiv_id: c for c in view.seen} == expected
            assert 20 <= len(view.seen) <= 60
            assert all(s.fetched_at <= day.send_at + horizon for c in day.candidates for s in c.snapshots)
            assert view.covered and any(g.upvotes for g in view.gains)
        total = history.count_papers(session, first=start, last=start + dt.timedelta(days=5))
        assert total == sum(len(d.candidates) for d in days)
        assert history.count_papers(session, first=start, last=start + dt.timedelta(days=5),
                                    organization=synthetic.SYNTHETIC_ORGANIZATION) == total
    report = bt.evaluate([bt.view_of(d, horizon=horizon) for d in days], bt.standard_scorers(Weights()))
    assert len(report.judged) == 6 and report.skipped == {bt.FEW_PAPERS: 1}
