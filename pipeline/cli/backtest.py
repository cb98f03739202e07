"""The trend score's evidence: ``synthesize`` (a made-up history to try it on), ``backtest`` (judge the scores)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import Session

from pipeline import service
from pipeline.cli.base import app, out, progress_bar, settings
from pipeline.digest import backtest as bt
from pipeline.digest import history, metrics
from pipeline.digest import weight_fit as wf
from pipeline.digest.rank import Weights
from pipeline.errors import BacktestError, PapermailError
from pipeline.ingest import files, synthetic

PANEL = "Judging the trend score"
PLOT_EXTRA = "pip install 'papermail[bench]'"
_PLOT_EXTRA_HELP = PLOT_EXTRA.replace("[", "\\[")  # help text is Rich markup, where [bench] would vanish



@app.command(rich_help_panel=PANEL)
def synthesize(
    out_dir: Annotated[Path, typer.Option("--out", help="An empty (or new) folder to write the snapshot files to.")],
    days: Annotated[int, typer.Option(min=1, max=3650, help="Days of listings.")] = synthetic.DEFAULT_DAYS,
    seed: Annotated[int, typer.Option(help="The same seed writes the same bytes.")] = synthetic.DEFAULT_SEED,
    start: Annotated[str, typer.Option(help="The first listing day (YYYY-MM-DD).")] = synthetic.DEFAULT_START.isoformat(),
) -> None:
    """Write a made-up Hugging Face history (snapshot files every 3 hours) to try the backtest on.

    Papers arrive daily with heavy-tailed popularity, upvotes come in a burst in the first hours, GitHub stars
    grow slower and longer, some papers are listed again. No real upvote history can be fetched, so figures
    measured on this one test the backtest's machinery, not the world. Load it with
    `papermail ingest --source file:DIR`, then run `papermail backtest`.
    """
    first = _date(start, "--start") or synthetic.DEFAULT_START
    if out_dir.exists() and not out_dir.is_dir():
        raise PapermailError(f"{out_dir} is not a folder")
    if out_dir.is_dir() and any(files.fetched_at_from_name(p) for p in out_dir.glob("*.json")):
        raise PapermailError(f"{out_dir} already holds snapshot files; write the history to an empty folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        written = size = 0
        for name, raw in synthetic.snapshots(days=days, seed=seed, start=first):
            (out_dir / name).write_bytes(raw)
            written += 1
            size += len(raw)
    except OSError as exc:
        raise PapermailError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    last = first + dt.timedelta(days=days - 1)
    out.print(f"wrote {written} snapshot files ({size / 1e6:.0f} MB): {days} days of listings, {first} to {last}, "
              f"seed {seed}, to {out_dir}")
    out.print("synthetic: figures measured on it test the backtest's machinery, not the world")
    out.print(f"next: papermail ingest --source file:{out_dir}   then: papermail backtest")


def _date(value: str | None, flag: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2025-03-21", param_hint=flag) from None


@app.command(rich_help_panel=PANEL)
def backtest(
    first: Annotated[str | None, typer.Option("--from", help="First listing day to judge (YYYY-MM-DD). "
                                              "Default: the first stored.")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last listing day to judge. Default: the last stored.")] = None,
    horizon_days: Annotated[int, typer.Option("--horizon-days", min=1, max=30,
                                              help="How long after the send moment gains are counted.")] = 3,
    fit: Annotated[bool, typer.Option("--fit", help="Grid-search papermail's weights and half-life on the first "
                                      "60 % of the days and report every score on the rest only.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw the figures to this PNG (needs "
                                              f"matplotlib: {_PLOT_EXTRA_HELP}).")] = None,
) -> None:
    """Judge trend scores on the stored history: which would have put first the papers that went on to gain most?

    Each day's papers are scored as of that day's send moment (the next day's SEND_HOUR UTC) from the snapshots
    fetched until then, and never any later one; they are judged against what each paper gained over the
    horizon after it: upvotes (the main table), comments, and GitHub stars (a table each).

    Scores: upvotes (the total so far), hn-gravity (Hacker News: (upvotes - 1) / (age in hours + 2)^1.8),
    stars-per-hour (Papers with Code: GitHub stars gained per hour over the last 24 h), papermail (the trend
    score, with the RANK_* settings).

    Metrics, per day, then averaged over days with a 95 % bootstrap interval (days resampled): NDCG@10 (1 when
    the score's top 10 are the ten biggest gainers in order, graded by the gain), precision@10 (the share of the
    score's top 10 among the ten biggest gainers), Spearman rho (rank correlation of score and gain over all the
    day's papers; 1 = the same order, 0 = unrelated). Days with fewer than 10 papers, or whose horizon the
    history does not reach, are skipped and counted.
    """
    cfg = settings()
    horizon = dt.timedelta(days=horizon_days)
    if plot is not None:
        _matplotlib()  # before the work, not after it
    with Session(service.engine(cfg)) as session:
        stored = history.stored_range(session)
        if stored is None:
            raise BacktestError("no stored history to backtest: ingest snapshots first (papermail ingest --source "
                                "file:DIR), or make a synthetic history with papermail synthesize --out DIR")
        first_day, last_day = _date(first, "--from") or stored[0], _date(last, "--to") or stored[1]
        if first_day > last_day:
            raise BacktestError(f"--from {first_day} is after --to {last_day}")
        papers = history.count_papers(session, first=first_day, last=last_day)
        made_up = history.count_papers(session, first=first_day, last=last_day,
                                       organization=synthetic.SYNTHETIC_ORGANIZATION)
        views: list[bt.DayView] = []
        with progress_bar() as progress:
            bar = progress.add_task("reading days", total=(last_day - first_day).days + 1)
            for day in history.load_days(session, first=first_day, last=last_day, send_hour=cfg.send_hour,
                                         horizon=horizon):
                views.append(bt.view_of(day, horizon=horizon))
                progress.advance(bar)
    configured = service.weights(cfg)
    scorers = bt.standard_scorers(configured)

    moment = bt.send_moment(first_day, send_hour=cfg.send_hour)
    out.print(f"history: {len(views)} days listed {first_day} to {last_day}, {papers:,} papers; each day scored "
              f"as of the next day's {moment:%H:%M} UTC (the send hour and the run's first minutes) against what "
              f"its papers gained in the {horizon_days} day{'s' if horizon_days > 1 else ''} after")
    if made_up:
        share = "all" if made_up == papers else f"{made_up:,} of {papers:,}"
        out.print(f"note: {share} of these papers are synthetic (papermail synthesize): the figures test the "
                  "backtest's machinery, not the world")
    if fit:
        judgeable, skipped = bt.judgeable(views)
        _print_days(bt.Report(target="upvotes", rows=(), judged=tuple(v.day for v in judgeable),
                              skipped=dict(skipped)), len(views), word="usable")
        result = _fit(views, scorers, horizon=horizon, configured=configured)
        reports, title = result.reports, "held-out days only"
    else:
        reports = bt.judge(views, scorers)
        _print_days(reports[0], len(views))
        title = f"{len(reports[0].judged)} days"
    for report in reports:
        _print_report(report, primary=report is reports[0])
    out.print("")
    out.print(f"means over days with 95 % bootstrap intervals ({bt.RESAMPLES:,} resamples of the days); "
              "NDCG@10 graded by the gain, precision@10 against the ten biggest gainers, Spearman ρ over all "
              "the day's papers")
    if plot is not None:
        _plot(reports, plot, title=f"papermail backtest, {first_day} to {last_day}, {title}"
              + (" (synthetic history)" if made_up else ""))
        out.print(f"plot: {plot}")


def _fit(views: list[bt.DayView], scorers: dict[str, bt.Scorer], *, horizon: dt.timedelta,
         configured: Weights) -> wf.FitReport:
    grid = wf.Grid()
    with progress_bar() as progress:
        bar = progress.add_task("fitting weights", total=len(grid.window_hours) * len(grid.half_life_hours))
        result = wf.fit_and_judge(views, scorers, horizon=horizon, grid=grid, tick=lambda: progress.advance(bar))
    split, chosen = result.split, result.fit
    out.print(f"fit: {chosen.tried:,} weight settings tried on {len(split.fit)} days ({_span(split.fit)}), chosen "
              f"by mean NDCG@10 of upvotes gained; {len(split.gap)} day{'' if len(split.gap) == 1 else 's'} "
              "after them left out, so the fit used nothing fetched after the first judged send moment")
    out.print(f"chosen:     {_weights(chosen.weights)} (NDCG@10 {chosen.ndcg:.3f} on the fit days)")
    out.print(f"configured: {_weights(configured)}")
    out.print(f"held out: {len(split.held_out)} days ({_span(split.held_out)}); every figure below is on these "
              "days only")
    return result


def _span(days: Sequence[bt.DayView]) -> str:
    return f"{days[0].day} to {days[-1].day}" if days else "none"


def _weights(w: Weights) -> str:
    return (f"upvote {w.upvote:g}, comment {w.comment:g}, star {w.star:g}, half-life {w.half_life_hours:g} h, "
            f"window {w.window_hours:g} h")


def _skips(skipped: dict[str, int]) -> str:
    return "; ".join(f"{n} {'day' if n == 1 else 'days'}: {reason}" for reason, n in skipped.items())


def _print_days(report: bt.Report, total: int, *, word: str = "judged") -> None:
    line = f"{word}: {len(report.judged)} of {total} days"
    out.print(line + (f" (skipped {_skips(report.skipped)})" if report.skipped else ""))


def _estimate(e: metrics.Estimate) -> str:
    return f"{e.mean:6.3f} [{e.low:6.3f}, {e.high:6.3f}]"


def _print_report(report: bt.Report, *, primary: bool) -> None:
    name = bt.TARGET_NAMES[report.target]
    if not report.rows:
        out.print("")
        out.print(f"against {name}: not judged, too few days ({_skips(report.skipped)})")
        return
    out.print("")
    out.print(f"against {name}{' (the main target)' if primary else ''}:")
    width = max(len("scorer"), *(len(r.scorer) for r in report.rows))
    cell = len(_estimate(metrics.Estimate(0, 0, 0)))
    out.print(f"  {'scorer':<{width}}  {'NDCG@10':<{cell}}  {'precision@10':<{cell}}  {'Spearman ρ':<{cell}}  days")
    for row in report.rows:
        out.print(f"  {row.scorer:<{width}}  {_estimate(row.ndcg)}  {_estimate(row.precision)}  "
                  f"{_estimate(row.spearman)}  {row.days:>4}")


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PapermailError(f"--plot needs matplotlib, which is not installed: {PLOT_EXTRA}") from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


METRICS = (("ndcg", "NDCG@10"), ("precision", "precision@10"), ("spearman", "Spearman ρ"))


def _plot(reports: Sequence[bt.Report], path: Path, *, title: str) -> None:
    """One row per target, one panel per metric: each scorer's mean and its interval."""
    plt = _matplotlib()
    judged = [r for r in reports if r.rows]
    fig, axes = plt.subplots(len(judged), len(METRICS), figsize=(4.2 * len(METRICS), 3.0 * len(judged) + 0.6),
                             squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row_axes, report in zip(axes, judged):
        names = [r.scorer for r in report.rows]
        for ax, (metric, label) in zip(row_axes, METRICS):
            est = [getattr(r, metric) for r in report.rows]
            ax.bar(range(len(names)), [e.mean for e in est], color=colours[: len(names)],
                   yerr=[[e.mean - e.low for e in est], [e.high - e.mean for e in est]], capsize=4)
            ax.set_xticks(range(len(names)), names, rotation=25, ha="right", fontsize=8)
            ax.set_title(f"{label}, {bt.TARGET_NAMES[report.target]}", fontsize=9)
            ax.axhline(0, color="black", linewidth=0.6)
            ax.set_ylim(min(0.0, *(e.low for e in est)) - 0.05, 1.05)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise PapermailError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
