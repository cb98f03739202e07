"""The ``papermail`` command.

Every step goes through the Celery tasks in ``workers.tasks``: in-process when
BROKER_URL is unset, queued for ``celery -A workers worker`` when it is set.
Errors a user can cause end in one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlmodel import Session, select

from pipeline import jobs, slots
from pipeline.dispatch import delivery_counts, iter_unsettled
from pipeline.errors import ConfigError, PapermailError
from pipeline.issues import find_issue
from pipeline.models import Edition, IssueStatus, ResendScope, Subscriber, SubscriberStatus, utcnow
from pipeline.rank import explain_lines
from pipeline.resend import history as resend_history
from pipeline.settings import Settings, get_settings
from pipeline.subscribers import (
    EXPORT_FIELDS,
    Suppressed,
    add_subscriber,
    export_rows,
    import_rows,
    list_subscribers,
    read_csv_emails,
    remove_subscribers,
    store_address,
)
from pipeline.text import terminal_text

app = typer.Typer(
    help="papermail: a daily email of the machine-learning papers that are trending.\n\n"
    "The daily job is: ingest -> rank -> build (render once) -> send. `papermail run` does all of it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
subscribers_app = typer.Typer(help="Add, import and list subscribers.", no_args_is_help=True)
app.add_typer(subscribers_app, name="subscribers")


class TerminalConsole(Console):
    """A console for lines that carry text from outside: addresses, bounce reports, SMTP replies,
    paper titles and subjects, file names, error messages quoting any of them.

    Every string printed goes through :func:`~pipeline.text.terminal_text` first, so a forged
    bounce cannot send ``ESC ]0;...`` or ``ESC [2J`` to the operator's terminal, nor start a
    line of its own; and none is read as Rich markup or emoji codes ("[link=...]", ":x:").
    One line per call.
    """

    def print(self, *objects: Any, markup: bool | None = False, highlight: bool | None = False,
              emoji: bool | None = False, **options: Any) -> None:
        safe = [terminal_text(o) if isinstance(o, str) else o for o in objects]
        super().print(*safe, markup=markup, highlight=highlight, emoji=emoji, **options)


out = TerminalConsole(soft_wrap=True)
err = TerminalConsole(stderr=True, soft_wrap=True)


class TerminalLogHandler(logging.Handler):
    """Log records as one line each on ``err``, a traceback summed up by its exception.

    Without a handler, logging's last resort writes a warning's whole traceback to the
    terminal, with whatever text from outside its exception quotes (a bounce's made-up
    charset, say), escapes included.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = f"{record.levelname.lower()}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                line += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            err.print(line)
        except Exception:  # noqa: BLE001  logging must never stop the command
            self.handleError(record)


DEMO_SUBSCRIBERS = ("ada@example.org", "grace@example.org", "alan@example.org")

DateOpt = Annotated[
    str | None,
    typer.Option("--date", help="The day whose papers the issue ranks (YYYY-MM-DD). Default: yesterday (UTC)."),
]
EditionOpt = Annotated[
    Edition,
    typer.Option("--edition", help="daily (the day's papers) or weekly (the seven days up to --date)."),
]
SourceOpt = Annotated[
    str,
    typer.Option(
        "--source",
        help="Where papers come from: hf (Hugging Face daily papers), arxiv (arXiv categories from settings), "
        "sample (the bundled real sample of 2025-03-21, offline) or file:PATH (a saved daily-papers JSON).",
    ),
]


def settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]).upper() or "settings"
        raise ConfigError(f"bad setting {where}: {first['msg']}") from None


def parse_day(value: str | None, *, source: str | None = None) -> dt.date:
    if value is None:
        return jobs.sample_day() if source == jobs.SAMPLE else jobs.default_day(utcnow())
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2025-03-21", param_hint="--date") from None


def eager(cfg: Settings) -> bool:
    return cfg.broker_url is None


# --- commands ---------------------------------------------------------------------------------


@app.command()
def init(demo: Annotated[bool, typer.Option(help="Also add three confirmed demo subscribers (@example.org).")] = False) -> None:
    """Create the database tables (safe to run again)."""
    cfg = settings()
    engine = jobs.engine(cfg)
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
    day = parse_day(date, source=source)
    from workers import tasks

    summary = tasks.ingest.delay(day.isoformat(), source)
    if not eager(cfg):
        out.print(f"ingest of {day} from {source} queued")
        return
    _print_ingest(summary.get())


def _print_ingest(summary: dict) -> None:
    out.print(
        f"ingested {summary['day']} from {summary['source']}: {summary['new']} new papers, "
        f"{summary['updated']} updated, {summary['snapshots']} engagement snapshots"
    )
    skipped = summary["skipped"]
    if skipped:
        err.print(f"skipped {len(skipped)} malformed record(s):")
        for ref, reason in skipped:
            err.print(f"  {ref}: {reason}", markup=False, highlight=False)


@app.command()
def rank(
    date: DateOpt = None,
    explain: Annotated[bool, typer.Option("--explain", help="Show each paper's score and its parts.")] = False,
    limit: Annotated[int, typer.Option(help="How many papers to show.")] = 20,
) -> None:
    """Rank the day's papers by trend score (nothing is stored)."""
    cfg = settings()
    day = parse_day(date)
    from pipeline.issues import rank_day

    req = jobs.rank_request(cfg, day=day, now=utcnow())
    with Session(jobs.engine(cfg)) as session:
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
    issue, built = jobs.build(cfg, day=day, edition=edition, force=force)
    state = "built" if built else "already built"
    out.print(f"{edition.value} issue {day} {state}: {issue.size} papers, "
              f"{len(issue.html.encode()) / 1024:.0f} KB HTML")
    out.print(f"subject: {issue.subject}", markup=False, highlight=False)


@app.command()
def send(date: DateOpt = None, edition: EditionOpt = Edition.daily) -> None:
    """Send the day's issue to every confirmed subscriber who has not received it yet."""
    cfg = settings()
    _send(cfg, parse_day(date), edition)


def _send(cfg: Settings, day: dt.date, edition: Edition) -> None:
    from workers import tasks

    if not eager(cfg):
        tasks.dispatch.delay(day.isoformat(), edition.value)
        out.print(f"sending of {day} queued; follow it with: papermail status --date {day}")
        return
    jobs.engine(cfg)  # schema ready before two threads use it
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(lambda: tasks.dispatch.delay(day.isoformat(), edition.value).get())
        _follow(cfg, day, edition, until=lambda *_: future.done(), every=0.5)
        future.result()  # re-raises what the send raised
    _print_status(cfg, day, edition)


def _follow(cfg: Settings, day: dt.date, edition: Edition, *,
            until: Callable[[IssueStatus | None, dict[str, int] | None], bool], every: float) -> None:
    """A progress bar over the delivery ledger, read every ``every`` seconds until ``until(status, counts)``."""
    engine = jobs.engine(cfg)
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
    from workers import tasks

    if not eager(cfg):
        tasks.run.delay(day.isoformat(), source)
        out.print(f"daily job for {day} queued; follow it with: papermail status --date {day}")
        return
    _print_ingest(tasks.ingest.delay(day.isoformat(), source).get())
    for edition in jobs.editions_due(cfg, day=day):
        built = tasks.build.delay(day.isoformat(), edition.value).get()["built"]
        with Session(jobs.engine(cfg)) as session:
            issue = jobs.issue_for(session, day, edition)
        out.print(f"{edition.value} issue {day} {'built' if built else 'already built'}: {issue.size} papers — "
                  f"{issue.subject}", markup=False, highlight=False)
        suffix = "" if edition is Edition.daily else "-weekly"
        preview_path = Path("var") / f"preview-{day}{suffix}.html"
        _write_preview(cfg, issue.html, preview_path)
        _send(cfg, day, edition)
        if not cfg.smtp_url:
            out.print(f"messages: {cfg.outbox_dir / (day.isoformat() + suffix)}/*.eml")
        out.print(f"preview:  {preview_path}")


@app.command()
def preview(
    date: DateOpt = None,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the HTML.")] = Path("var/preview.html"),
    edition: EditionOpt = Edition.daily,
) -> None:
    """Write the issue's HTML to a file to look at in a browser."""
    cfg = settings()
    day = parse_day(date)
    with Session(jobs.engine(cfg)) as session:
        html = jobs.issue_for(session, day, edition).html
    _write_preview(cfg, html, out_file)
    out.print(f"preview of {day}: {out_file}")


def _write_preview(cfg: Settings, html: str, path: Path) -> None:
    html = html.replace(slots.UNSUBSCRIBE_URL, f"{cfg.base_url}/u/preview").replace(
        slots.PREFERENCES_URL, f"{cfg.base_url}/p/preview"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")


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
    info = jobs.progress(cfg, day=day, edition=edition)
    issue, counts = info["issue"], info["counts"]
    with Session(jobs.engine(cfg)) as session:
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
    if info["open"]:
        eta = f", about {info['eta']} left" if info["eta"] else ""
        out.print(f"  {info['open']} to go at {info['rate']:.1f} messages/s{eta}")
    for sub_id, state, reason in problems[:50]:
        out.print(f"  {state:9} {emails.get(sub_id, sub_id)}: {reason}", markup=False, highlight=False)
    if len(problems) > 50:
        out.print(f"  … and {len(problems) - 50} more")
    for record in resends:
        out.print(f"  resend #{record.id} {record.requested_at:%Y-%m-%d %H:%M} UTC by {record.requested_by}: "
                  f"{record.scope.value}, {record.deliveries} deliveries — {record.reason}", markup=False, highlight=False)


@app.command()
def pause(
    date: DateOpt = None,
    edition: EditionOpt = Edition.daily,
    reason: Annotated[str, typer.Option(help="Why; shown by status.")] = "paused by an operator",
) -> None:
    """Stop an issue's sending now; batches finish the message in hand. `papermail resume` continues."""
    cfg = settings()
    day = parse_day(date)
    if not jobs.pause(cfg, day=day, edition=edition, reason=reason):
        raise PapermailError(f"the {edition.value} issue of {day} is not sending, so it cannot be paused")
    out.print(f"{edition.value} issue {day} paused")


@app.command()
def resume(date: DateOpt = None, edition: EditionOpt = Edition.daily) -> None:
    """Resume a paused issue: its pending and retrying deliveries are sent."""
    cfg = settings()
    day = parse_day(date)
    if not jobs.resume(cfg, day=day, edition=edition):
        raise PapermailError(f"the {edition.value} issue of {day} is not paused")
    out.print(f"{edition.value} issue {day} resumed")
    _send(cfg, day, edition)


@app.command()
def resend(
    date: DateOpt = None,
    edition: EditionOpt = Edition.daily,
    failed: Annotated[bool, typer.Option("--failed", help="Resend to deliveries that failed or are uncertain.")] = False,
    to: Annotated[list[str] | None, typer.Option("--to", help="Resend to this address (repeatable).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Resend to everyone in the issue (needs --force).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Confirm a resend to everyone.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded with the resend.")] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print who would receive it.")] = False,
) -> None:
    """Send an issue again to an explicit scope. Never to unsubscribed, bounced or unconfirmed addresses."""
    cfg = settings()
    day = parse_day(date)
    scopes = [s for s, on in ((ResendScope.failed, failed), (ResendScope.to, bool(to)), (ResendScope.all, all_)) if on]
    if len(scopes) != 1:
        raise typer.BadParameter("choose exactly one of --failed, --to EMAIL, --all")
    if scopes[0] is ResendScope.all and not force and not dry_run:
        raise typer.BadParameter("--all sends the issue again to everyone; add --force if that is meant")
    if not reason and not dry_run:
        raise typer.BadParameter("say why with --reason; every resend is recorded", param_hint="--reason")
    record, plan = jobs.resend(cfg, day=day, edition=edition, scope=scopes[0], addresses=to or [], reason=reason,
                               requested_by="cli", dry_run=dry_run)
    for email, why in plan.skipped:
        err.print(f"  not sent to {email}: {why}", markup=False, highlight=False)
    if dry_run:
        for email in plan.addresses:
            out.print(email, markup=False, highlight=False)
        err.print(f"dry run: {len(plan.targets)} would receive the {edition.value} issue of {day}")
        return
    if record is None:
        out.print("nothing to resend")
        return
    out.print(f"resend #{record.id} recorded: {record.deliveries} deliveries queued again ({reason})",
              markup=False, highlight=False)
    _send(cfg, day, edition)


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the newest migration (every command also does it on first use)."""
    from pipeline import migrate as migrations
    from pipeline.db import engine_for

    engine = engine_for(settings().database_url)
    old = migrations.current(engine)
    migrations.upgrade(engine)
    new = migrations.current(engine)
    url = engine.url.render_as_string(hide_password=True)
    out.print(f"database at {url}: {old or 'none'} -> {new}", markup=False, highlight=False)
    for line in migrations.check(engine):  # models changed without a revision, or foreign tables
        err.print(f"  differs from the models: {line}", markup=False, highlight=False)


@app.command()
def bounces(
    path: Annotated[
        Path | None,
        typer.Argument(help="A Maildir, a folder of .eml files, an mbox or one .eml file. "
                       "Nothing or '-': one message on standard input (for an MTA's pipe)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what each message would do; record nothing.")] = False,
) -> None:
    """Read mail that came back: count hard bounces, carry out mailed unsubscribes.

    A bounce counts only if it quotes the Message-ID of a message we sent,
    and then against the subscriber that message went to.
    An address at BOUNCE_LIMIT is marked bounced and no longer mailed.
    An unsubscribe request (the List-Unsubscribe mailto:) needs its signed token.
    Each bounce counts once: reading a mailbox again is harmless.
    """
    from collections import Counter

    from pipeline.mailboxes import read_messages

    kinds = ("hard bounce", "marked bounced", "temporary failure", "permanent failure", "not counted",
             "already recorded", "unsubscribed by mail", "unsubscribe request")

    if path is not None and str(path) != "-" and not path.exists():
        raise PapermailError(f"{path} does not exist")
    cfg = settings()
    tally: Counter[str] = Counter()
    messages = read_messages(path)
    while True:
        try:
            raw = next(messages, None)
        except OSError as exc:  # unreadable file in a Maildir, permissions: one line, not a traceback
            raise PapermailError(f"cannot read {exc.filename or path}: {exc.strerror or exc}") from None
        if raw is None:
            break
        tally["messages"] += 1
        handled = jobs.handle_inbound(cfg, raw, record=not dry_run)
        tally[handled.kind] += 1
        for address, what in handled.lines:
            out.print(f"{address}: {what}", markup=False, highlight=False)
            tally[next((kind for kind in kinds if what.startswith(kind)), "other")] += 1
    counted = tally["hard bounce"] + tally["marked bounced"]
    out.print(
        f"{tally['messages']} message(s), {tally['bounce']} bounce(s), {tally['unsubscribe']} unsubscribe request(s): "
        f"{counted} hard bounce(s) counted, {tally['marked bounced']} address(es) marked bounced, "
        f"{tally['temporary failure']} temporary failure(s), {tally['not counted']} not counted, "
        f"{tally['already recorded']} already recorded, {tally['unsubscribed by mail']} unsubscribed"
        + ("; dry run, nothing recorded" if dry_run else ""),
        markup=False, highlight=False,
    )


@subscribers_app.command("clear-bounces")
def subscribers_clear_bounces(
    emails: Annotated[list[str], typer.Argument(help="Addresses known to work again.")],
) -> None:
    """Reset addresses' hard-bounce counts; "bounced" ones become active and are mailed again."""
    from pipeline.bounces import clear_bounces

    cleared = 0
    with Session(jobs.engine(settings())) as session:
        for email in emails:
            try:
                found = clear_bounces(session, email=email)
            except PapermailError as exc:  # one mistyped address does not stop the others
                err.print(f"{email}: {exc}", markup=False, highlight=False)
                continue
            if found:
                cleared += 1
                out.print(f"{email}: bounces cleared", markup=False, highlight=False)
            else:
                err.print(f"{email}: not a subscriber", markup=False, highlight=False)
        session.commit()
    if not cleared:
        raise typer.Exit(1)


@app.command()
def housekeeping() -> None:
    """Forget addresses that never confirmed within PENDING_EXPIRY_DAYS (beat runs this daily on workers).

    Only addresses never confirmed and never mailed are deleted; a pending address with a history
    goes back to unsubscribed. A row that cannot be handled is reported and the others go on.
    """
    expiry = jobs.housekeeping(settings())
    out.print(f"forgot {expiry.forgotten} unconfirmed address(es), marked {expiry.marked} former subscriber(s) "
              f"unsubscribed, {len(expiry.failed)} failed")
    for problem in expiry.failed:
        err.print(f"  {problem}")
    if expiry.failed:
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the site: subscribe, confirm, unsubscribe (RFC 8058 one-click), preferences, archive, /healthz."""
    import uvicorn

    from pipeline.web import create_app

    cfg = settings()
    jobs.engine(cfg)  # a database it cannot use is a one-line error now, not a 500 on every page
    uvicorn.run(create_app(cfg), host=host, port=port, proxy_headers=cfg.trust_proxy_headers,
                forwarded_allow_ips="*" if cfg.trust_proxy_headers else None, log_level="info")


ForceConsentOpt = Annotated[
    str | None,
    typer.Option(
        "--force-consent", metavar="RECORD",
        help="Make addresses active even if they unsubscribed or were erased, because you hold their consent: "
        "RECORD says where it is (e.g. 'signed form 2026-11-30'). Recorded with each address and logged. "
        "Bounced addresses stay bounced.",
    ),
]


@subscribers_app.command("add")
def subscribers_add(
    emails: Annotated[list[str], typer.Argument(help="One or more addresses.")],
    pending: Annotated[bool, typer.Option("--pending", help="Store as awaiting confirmation instead of confirmed.")] = False,
    force_consent: ForceConsentOpt = None,
) -> None:
    """Add subscribers (confirmed unless --pending).

    An address that unsubscribed, bounced or was erased is never made active again by this
    command (only by its owner confirming a new subscription), unless --force-consent says
    where the consent to mail it is recorded.
    """
    refused, record = 0, _consent_record(force_consent, pending)
    with Session(jobs.engine(settings())) as session:
        for email in emails:
            try:
                sub, outcome = store_address(session, email=email, confirmed=not pending, force_consent=record)
            except Suppressed as exc:
                refused += 1
                err.print(f"{email}: not added: {exc}", markup=False, highlight=False)
                continue
            note = {"added": "added", "forced": f"active again (consent: {force_consent})"}.get(
                outcome, f"already known ({sub.status.value})")
            out.print(f"{sub.email}: {note}", markup=False, highlight=False)
        session.commit()
    if refused:
        raise typer.Exit(1)


def _consent_record(force_consent: str | None, pending: bool) -> str | None:
    if force_consent is None:
        return None
    if pending:
        raise typer.BadParameter("--force-consent makes addresses active; it cannot go with --pending")
    if not force_consent.strip():
        raise typer.BadParameter("say where the consent is recorded", param_hint="--force-consent")
    return force_consent.strip()


@subscribers_app.command("import")
def subscribers_import(
    csv_file: Annotated[Path, typer.Argument(help="A CSV with an 'email' column, or addresses in the first column.")],
    pending: Annotated[bool, typer.Option("--pending", help="Import as awaiting confirmation.")] = False,
    force_consent: ForceConsentOpt = None,
) -> None:
    """Import addresses from a CSV file; invalid rows are reported.

    Addresses that unsubscribed, bounced or were erased are counted and left alone (none of
    them is mailed, not even a confirmation), unless --force-consent says where the consent
    to mail them is recorded. The whole file is read and checked before anything is stored.
    """
    cfg = settings()
    record = _consent_record(force_consent, pending)
    rows = read_csv_emails(csv_file)
    with Session(jobs.engine(cfg)) as session:
        report = import_rows(session, rows=rows, confirmed=not pending, force_consent=record)
        session.commit()
    out.print(f"added {report.added}, already subscribed {report.already}, "
              f"left unsubscribed/bounced/erased {report.kept_unsubscribed}, invalid {len(report.invalid)}"
              + (f", made active again on your consent record {len(report.forced)}" if record else ""))
    for address in report.forced:
        err.print(f"  {address}: active again (consent: {record})", markup=False, highlight=False)
    for problem in report.invalid:
        err.print(f"  {problem}", markup=False, highlight=False)
    if report.to_confirm:
        from workers import tasks

        for subscriber_id in report.to_confirm:
            tasks.send_confirmation.delay(subscriber_id)
        verb = "sent" if eager(cfg) else "queued"
        out.print(f"confirmation emails {verb}: {len(report.to_confirm)}")


@subscribers_app.command("export")
def subscribers_export(
    out_file: Annotated[Path | None, typer.Option("--out", help="CSV file to write (default: standard output).")] = None,
) -> None:
    """Export every subscriber with status and preferences as CSV."""
    with Session(jobs.engine(settings())) as session:
        rows = export_rows(session)
        stream = out_file.open("w", newline="", encoding="utf-8") if out_file else sys.stdout
        try:
            writer = csv.DictWriter(stream, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            count = 0
            for row in rows:
                writer.writerow(row)
                count += 1
        finally:
            if out_file:
                stream.close()
    err.print(f"{count} subscriber(s) exported{f' to {out_file}' if out_file else ''}")


@subscribers_app.command("remove")
def subscribers_remove(
    emails: Annotated[list[str], typer.Argument(help="Addresses to erase.")],
) -> None:
    """Erase addresses and their delivery records. (To stop mail but remember the address, they unsubscribe.)"""
    with Session(jobs.engine(settings())) as session:
        removed, unknown = remove_subscribers(session, emails=emails)
        session.commit()
    for address in removed:
        out.print(f"{address}: removed", markup=False, highlight=False)
    for address in unknown:
        err.print(f"{address}: not a subscriber", markup=False, highlight=False)
    if unknown and not removed:
        raise typer.Exit(1)


@subscribers_app.command("list")
def subscribers_list(
    status_filter: Annotated[SubscriberStatus | None, typer.Option("--status", help="Only this status.")] = None,
) -> None:
    """List subscribers with their status."""
    with Session(jobs.engine(settings())) as session:
        subs = list_subscribers(session, status=status_filter)
    for sub in subs:
        typer.echo(f"{terminal_text(sub.email)}\t{sub.status.value}\t{sub.created_at:%Y-%m-%d}")  # tab-separated for scripts
    err.print(f"{len(subs)} subscriber(s)")


def main() -> None:
    ours = logging.getLogger("pipeline")
    if not ours.handlers and not logging.getLogger().handlers:  # unless logging was set up by whoever runs us
        ours.addHandler(TerminalLogHandler(logging.WARNING))  # the libraries' own chatter stays where it was
    try:
        app()
    except PapermailError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
