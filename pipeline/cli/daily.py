"""The daily job's commands: init, ingest, rank, build, send, run, preview, status."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlmodel import Session, select

from pipeline import service
from pipeline.audience.subscribers import add_subscriber
from pipeline.cli.base import (
    DEMO_SUBSCRIBERS,
    DateOpt,
    EditionOpt,
    SourceOpt,
    app,
    eager,
    err,
    out,
    parse_day,
    progress_bar,
    settings,
)
from pipeline.compose import slots
from pipeline.compose.screenshots import screenshot
from pipeline.delivery.ledger import delivery_counts, iter_unsettled
from pipeline.delivery.resend import history as resend_history
from pipeline.digest.issues import find_issue
from pipeline.digest.rank import explain_lines
from pipeline.errors import PapermailError
from pipeline.models import Edition, Issue, IssueStatus, Subscriber, utcnow
from pipeline.settings import Settings


@app.command()
def init(demo: Annotated[bool, typer.Option(help="Also add three confirmed demo subscribers (@example.org).")] = False) -> None:
    """Create the database tables (safe to run again)."""
    cfg = settings()
    engine = service.engine(cfg)
    out.print(f"database ready: {engine.url.render_as_string(hide_password=True)}")
    if demo:
        with Session(engine) as session:
            for email in DEMO_SUBSCRIBERS:
                add_subscriber(session, email=email, confirmed=True)
            session.commit()
        out.print(f"demo subscribers: {', '.join(DEMO_SUBSCRIBERS)}")


@app.command()
def ingest(date: DateOpt = None, source: SourceOpt = "hf") -> None:
    """Fetch the day's papers and store them with a snapshot of their engagement."""
    cfg = settings()
    folder = Path(source.removeprefix("file:"))
    if date is None and source.startswith("file:") and folder.is_dir():
        _ingest_folder(cfg, folder)  # an archive of fetches: the whole history it holds
        return
    _print_ingest(service.ingest(cfg, day=parse_day(date, source=source), source=source))


@app.command()
def snapshot() -> None:
    """Fetch the last four days' Hugging Face lists once more: one engagement snapshot per paper.

    Beat runs it every SNAPSHOT_EVERY_HOURS; without workers, run it from cron
    (``0 */3 * * * papermail snapshot``) so that velocity is measured between fetches hours apart.
    """
    for summary in service.snapshot(settings()):
        _print_ingest(summary)


def _ingest_folder(cfg: Settings, folder: Path) -> None:
    total = service.IngestSummary(source=f"file:{folder}", day=dt.date.min)
    days, skipped = 0, list[str]()
    with progress_bar() as progress:
        bar = progress.add_task("ingesting days", total=None)
        for summary in service.ingest_history(cfg, folder, started=lambda n: progress.update(bar, total=n)):
            days += 1
            total.fetches += summary.fetches
            total.new += summary.new
            total.updated += summary.updated
            total.snapshots += summary.snapshots
            total.withdrawn += summary.withdrawn
            skipped.extend(f"{summary.day} {s.ref}: {s.reason}" for s in summary.skipped)
            progress.advance(bar)
    out.print(f"ingested {days} days of snapshots ({total.fetches} fetches) from {folder}: {total.new} new papers, "
              f"{total.updated} updated, {total.snapshots} engagement snapshots", markup=False, highlight=False)
    if total.withdrawn:
        out.print(f"{total.withdrawn} stored paper(s) now withdrawn: never featured again")
    if skipped:
        err.print(f"skipped {len(skipped)} malformed record(s):")
        for line in skipped:
            err.print(f"  {line}", markup=False, highlight=False)


def _print_ingest(summary: service.IngestSummary) -> None:
    out.print(
        f"ingested {summary.day} from {summary.source}: {summary.new} new papers, "
        f"{summary.updated} updated, {summary.snapshots} engagement snapshots"
    )
    if summary.skipped:
        err.print(f"skipped {len(summary.skipped)} malformed record(s):")
        for skipped in summary.skipped:
            err.print(f"  {skipped.ref}: {skipped.reason}", markup=False, highlight=False)
    if summary.withdrawn:
        out.print(f"{summary.withdrawn} stored paper(s) now withdrawn: never featured again")
    if summary.thumbnails or summary.thumbnails_skipped:
        out.print(f"thumbnails: {summary.thumbnails} fetched, {len(summary.thumbnails_skipped)} not (shown without)")
        for skipped in summary.thumbnails_skipped:
            err.print(f"  {skipped.ref}: {skipped.reason}", markup=False, highlight=False)


@app.command()
def rank(
    date: DateOpt = None,
    explain: Annotated[bool, typer.Option("--explain", help="Show each paper's score and its parts.")] = False,
    limit: Annotated[int, typer.Option(help="How many papers to show.")] = 20,
) -> None:
    """Rank the day's papers by trend score (nothing is stored)."""
    cfg = settings()
    day = parse_day(date)
    from pipeline.digest.issues import rank_day

    req = service.rank_request(cfg, day=day, now=utcnow())
    with Session(service.engine(cfg)) as session:
        scores, papers = rank_day(session, req)
    if not scores:
        raise PapermailError(f"no papers listed on {day}: run papermail ingest --date {day} first")
    out.print(f"{len(scores)} papers listed on {day}, scored as of {req.as_of:%Y-%m-%d %H:%M} UTC")
    if explain:
        for line in explain_lines(scores[:limit]):
            out.print(line, markup=False, highlight=False)
        w = req.weights
        out.print(
            f"score = ({w.upvote:g}·upvotes gained/h + {w.comment:g}·comments gained/h + {w.star:g}·log10(1+stars))"
            f" × 0.5^(age/{w.half_life_hours:g} h); gains over the last {w.window_hours:g} h of snapshots,"
            " or since listing when there is one snapshot",
            markup=False, highlight=False,
        )
        return
    for i, score in enumerate(scores[:limit], 1):
        out.print(f"{i:>3}  {score.score:>7.3f}  {papers[score.arxiv_id].title[:100]}", markup=False, highlight=False)


@app.command()
def build(
    date: DateOpt = None,
    force: Annotated[bool, typer.Option(help="Rebuild an issue that exists but has not been sent.")] = False,
    edition: EditionOpt = Edition.daily,
) -> None:
    """Rank the day's papers and render the issue once (frozen afterwards)."""
    cfg = settings()
    day = parse_day(date)
    issue, built = service.build(cfg, day=day, edition=edition, force=force)
    state = "built" if built else "already built"
    out.print(f"{edition.value} issue {day} {state}: {issue.size} papers, "
              f"{len(issue.html.encode()) / 1024:.0f} KB HTML")
    out.print(f"subject: {issue.subject}", markup=False, highlight=False)


@app.command()
def send(date: DateOpt = None, edition: EditionOpt = Edition.daily) -> None:
    """Send the day's issue to every confirmed subscriber who has not received it yet."""
    cfg = settings()
    send_issue(cfg, parse_day(date), edition)


def send_issue(cfg: Settings, day: dt.date, edition: Edition) -> None:
    """Send (or queue) an issue through the runner BROKER_URL chooses; in process, with a progress bar."""
    runner = Followed(cfg) if eager(cfg) else service.runner_for(cfg)
    runner.send_issue(day=day, edition=edition)
    if runner.queues:
        out.print(f"sending of {day} queued; follow it with: papermail status --date {day}")


class Followed(service.InProcess):
    """The in-process runner, sending while the terminal shows a progress bar over the ledger."""

    def send_issue(self, *, day: dt.date, edition: Edition) -> None:
        cfg = self.settings
        service.engine(cfg)  # schema ready before two threads use it
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(super().send_issue, day=day, edition=edition)
            _follow(cfg, day, edition, until=lambda *_: future.done(), every=0.5)
            future.result()  # re-raises what the send raised
        _print_status(cfg, day, edition)


def _follow(cfg: Settings, day: dt.date, edition: Edition, *,
            until: Callable[[IssueStatus | None, dict[str, int] | None], bool], every: float) -> None:
    """A progress bar over the delivery ledger, read every ``every`` seconds until ``until(status, counts)``."""
    engine = service.engine(cfg)
    columns = (TextColumn("sending {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as progress:
        bar = progress.add_task(day.isoformat(), total=None)
        done = False
        while True:
            with Session(engine) as session:
                issue = find_issue(session, day, edition)
                counts = None if issue is None else delivery_counts(session, issue_id=issue.id)  # type: ignore[arg-type]
            if counts:
                total = sum(counts.values())
                progress.update(bar, total=total, completed=total - _open(counts))
            if done:
                break
            # One more reading after the end, so the bar shows the final counts.
            done = until(None if issue is None else issue.status, counts)
            if not done:
                time.sleep(every)


def _open(counts: dict[str, int]) -> int:
    return counts["pending"] + counts["sending"] + counts["retry"]


@app.command()
def run(date: DateOpt = None, source: SourceOpt = "hf") -> None:
    """The whole daily job: ingest, rank and build the issue, send it. Running it again sends nothing twice."""
    cfg = settings()
    day = parse_day(date, source=source)
    if not eager(cfg):
        service.runner_for(cfg).run_day(day=day, source=source)
        out.print(f"daily job for {day} queued; follow it with: papermail status --date {day}")
        return
    service.run_day(cfg, day=day, source=source, runner=Followed(cfg), report=_RunReport(cfg))


class _RunReport:
    """Prints each step of the daily job as it happens, and writes each edition's preview."""

    def __init__(self, cfg: Settings) -> None:
        self.cfg = cfg

    def ingested(self, summary: service.IngestSummary) -> None:
        _print_ingest(summary)

    def built(self, issue: Issue, built: bool) -> None:
        out.print(f"{issue.edition.value} issue {issue.date} {'built' if built else 'already built'}: "
                  f"{issue.size} papers — {issue.subject}", markup=False, highlight=False)
        _write_preview(self.cfg, issue.html, self._preview_path(issue))

    def sent(self, issue: Issue) -> None:
        if not self.cfg.smtp_url:
            out.print(f"messages: {self.cfg.outbox_dir / (issue.date.isoformat() + self._suffix(issue))}/*.eml")
        out.print(f"preview:  {self._preview_path(issue)}")

    @staticmethod
    def _suffix(issue: Issue) -> str:
        return "" if issue.edition is Edition.daily else "-weekly"

    def _preview_path(self, issue: Issue) -> Path:
        return Path("var") / f"preview-{issue.date}{self._suffix(issue)}.html"


@app.command()
def preview(
    date: DateOpt = None,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the HTML.")] = Path("var/preview.html"),
    edition: EditionOpt = Edition.daily,
    png: Annotated[bool, typer.Option(
        "--png", help="Also screenshot it as a 375 px phone and a 1280 px desktop show it, in light and in dark "
                      "mode (FILE-375.png, FILE-1280-dark.png, ...), with the installed Chromium.")] = False,
) -> None:
    """Write the issue's HTML to a file to look at in a browser, and with --png its screenshots."""
    cfg = settings()
    day = parse_day(date)
    with Session(service.engine(cfg)) as session:
        html = service.issue_for(session, day, edition).html
    html = _write_preview(cfg, html, out_file)
    out.print(f"preview of {day}: {out_file}")
    if png:
        shots = screenshot(html, out_file.with_suffix(""), schemes=("light", "dark"),
                           resources=service.stored_images(cfg))
        for shot in shots:
            wider = f" (wider than the screen by {shot.overflow} px)" if shot.overflow else ""
            out.print(f"{shot.width} px, {shot.scheme}: {shot.path}{wider}")


def _write_preview(cfg: Settings, html: str, path: Path) -> str:
    html = html.replace(slots.UNSUBSCRIBE_URL, f"{cfg.base_url}/u/preview").replace(
        slots.PREFERENCES_URL, f"{cfg.base_url}/p/preview").replace(slots.FEEDBACK_URL, f"{cfg.base_url}/f/preview"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return html


@app.command()
def status(
    date: DateOpt = None,
    edition: EditionOpt = Edition.daily,
    watch: Annotated[bool, typer.Option("--watch", help="Follow a running send with a progress bar.")] = False,
) -> None:
    """Show an issue's deliveries by state, the send rate and time left, and any that failed or are uncertain."""
    cfg = settings()
    day = parse_day(date)
    if watch:
        def settled(state: IssueStatus | None, counts: dict[str, int] | None) -> bool:
            if state is None or counts is None:
                raise PapermailError(f"no {edition.value} issue for {day}")
            return _open(counts) == 0 or state in (IssueStatus.paused, IssueStatus.finished)

        _follow(cfg, day, edition, until=settled, every=1.0)
    _print_status(cfg, day, edition)


def _print_status(cfg: Settings, day: dt.date, edition: Edition = Edition.daily) -> None:
    info = service.progress(cfg, day=day, edition=edition)
    issue, counts = info.issue, info.counts
    assert issue.id is not None
    with Session(service.engine(cfg)) as session:
        problems = [(d.subscriber_id, d.status.value, d.last_error or d.smtp_reply or "")
                    for d in iter_unsettled(session, issue_id=issue.id)]
        resends = resend_history(session, issue=issue)
        ids = [p[0] for p in problems]
        emails = dict(session.exec(select(Subscriber.id, Subscriber.email).where(Subscriber.id.in_(ids))).all())  # type: ignore[union-attr]
    summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "no deliveries yet"
    label = "issue" if edition is Edition.daily else "weekly issue"
    out.print(f"{label} {day}: {issue.status.value} — {summary}", markup=False, highlight=False)
    if issue.paused_reason:
        out.print(f"  paused: {issue.paused_reason}", markup=False, highlight=False)
    if info.selections:
        out.print(f"  {info.selections} distinct selection{'s' if info.selections != 1 else ''} of papers "
                  f"({info.personal_selections} personal)")
    if info.open:
        eta = f", about {info.eta} left" if info.eta else ""
        out.print(f"  {info.open} to go at {info.rate:.1f} messages/s{eta}")
    for sub_id, state, reason in problems[:50]:
        out.print(f"  {state:9} {emails.get(sub_id, sub_id)}: {reason}", markup=False, highlight=False)
    if len(problems) > 50:
        out.print(f"  … and {len(problems) - 50} more")
    for record in resends:
        out.print(f"  resend #{record.id} {record.requested_at:%Y-%m-%d %H:%M} UTC by {record.requested_by}: "
                  f"{record.scope.value}, {record.deliveries} deliveries — {record.reason}", markup=False, highlight=False)
