"""Operators' commands: pause, resume, resend, migrate, bounces, housekeeping, serve."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline import service
from pipeline.cli.base import DateOpt, EditionOpt, app, err, out, parse_day, settings
from pipeline.cli.daily import send_issue
from pipeline.errors import PapermailError
from pipeline.models import Edition, ResendScope


@app.command()
def pause(
    date: DateOpt = None,
    edition: EditionOpt = Edition.daily,
    reason: Annotated[str, typer.Option(help="Why; shown by status.")] = "paused by an operator",
) -> None:
    """Stop an issue's sending now; batches finish the message in hand. `papermail resume` continues."""
    cfg = settings()
    day = parse_day(date)
    if not service.pause(cfg, day=day, edition=edition, reason=reason):
        raise PapermailError(f"the {edition.value} issue of {day} is not sending, so it cannot be paused")
    out.print(f"{edition.value} issue {day} paused")


@app.command()
def resume(date: DateOpt = None, edition: EditionOpt = Edition.daily) -> None:
    """Resume a paused issue: its pending and retrying deliveries are sent."""
    cfg = settings()
    day = parse_day(date)
    if not service.resume(cfg, day=day, edition=edition):
        raise PapermailError(f"the {edition.value} issue of {day} is not paused")
    out.print(f"{edition.value} issue {day} resumed")
    send_issue(cfg, day, edition)


@app.command()
def resend(
    date: DateOpt = None,
    edition: EditionOpt = Edition.daily,
    failed: Annotated[bool, typer.Option("--failed", help="Resend to deliveries that failed.")] = False,
    uncertain: Annotated[bool, typer.Option(
        "--uncertain", help="Resend to deliveries that may have arrived (the connection dropped after the message "
        "was sent): most did, so most of these people get a second copy.")] = False,
    to: Annotated[list[str] | None, typer.Option("--to", help="Resend to this address (repeatable).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Resend to everyone in the issue (needs --force).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Confirm a resend to everyone.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded with the resend.")] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print who would receive it.")] = False,
) -> None:
    """Send an issue again to an explicit scope. Never to unsubscribed, bounced or unconfirmed addresses."""
    cfg = settings()
    day = parse_day(date)
    chosen = ((ResendScope.failed, failed), (ResendScope.uncertain, uncertain), (ResendScope.to, bool(to)),
              (ResendScope.all, all_))
    scopes = [scope for scope, on in chosen if on]
    if len(scopes) != 1:
        raise typer.BadParameter("choose exactly one of --failed, --uncertain, --to EMAIL, --all")
    if scopes[0] is ResendScope.uncertain:
        err.print("warning: uncertain deliveries were usually delivered; each of these people may get the issue twice")
    if scopes[0] is ResendScope.all and not force and not dry_run:
        raise typer.BadParameter("--all sends the issue again to everyone; add --force if that is meant")
    if not reason and not dry_run:
        raise typer.BadParameter("say why with --reason; every resend is recorded", param_hint="--reason")
    record, plan = service.resend(cfg, day=day, edition=edition, scope=scopes[0], addresses=to or [], reason=reason,
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
    send_issue(cfg, day, edition)


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the newest migration (every command also does it on first use)."""
    from pipeline.db import migrate as migrations
    from pipeline.db.engine import engine_for

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

    from pipeline.inbound.mailboxes import read_messages
    from pipeline.inbound.outcomes import Outcome

    if path is not None and str(path) != "-" and not path.exists():
        raise PapermailError(f"{path} does not exist")
    cfg = settings()
    tally: Counter[str] = Counter()  # messages, and of each kind: bounce, unsubscribe, other
    outcomes: Counter[Outcome] = Counter()
    messages = read_messages(path)
    while True:
        try:
            raw = next(messages, None)
        except OSError as exc:  # unreadable file in a Maildir, permissions: one line, not a traceback
            raise PapermailError(f"cannot read {exc.filename or path}: {exc.strerror or exc}") from None
        if raw is None:
            break
        tally["messages"] += 1
        handled = service.handle_inbound(cfg, raw, record=not dry_run)
        tally[handled.kind] += 1
        for line in handled.lines:
            out.print(str(line), markup=False, highlight=False)
            outcomes[line.kind] += 1
    counted = outcomes[Outcome.hard_bounce] + outcomes[Outcome.marked_bounced]
    out.print(
        f"{tally['messages']} message(s), {tally['bounce']} bounce(s), {tally['unsubscribe']} unsubscribe request(s): "
        f"{counted} hard bounce(s) counted, {outcomes[Outcome.marked_bounced]} address(es) marked bounced, "
        f"{outcomes[Outcome.temporary_failure]} temporary failure(s), {outcomes[Outcome.not_counted]} not counted, "
        f"{outcomes[Outcome.already_recorded]} already recorded, {outcomes[Outcome.unsubscribed]} unsubscribed"
        + ("; dry run, nothing recorded" if dry_run else ""),
        markup=False, highlight=False,
    )


@app.command()
def housekeeping() -> None:
    """Forget addresses that never confirmed within PENDING_EXPIRY_DAYS (beat runs this daily on workers).

    Only addresses never confirmed and never mailed are deleted; a pending address with a history
    goes back to unsubscribed. A row that cannot be handled is reported and the others go on.
    """
    expiry = service.housekeeping(settings())
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
    service.engine(cfg)  # a database it cannot use is a one-line error now, not a 500 on every page
    uvicorn.run(create_app(cfg), host=host, port=port, proxy_headers=cfg.trust_proxy_headers,
                forwarded_allow_ips="*" if cfg.trust_proxy_headers else None, log_level="info")
