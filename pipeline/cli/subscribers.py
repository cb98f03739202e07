"""``papermail subscribers …``: add, import, export, remove, list, clear-bounces."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session, func, select

from pipeline import service
from pipeline.audience.subscribers import (
    EXPORT_FIELDS,
    ImportReport,
    Suppressed,
    export_rows,
    import_rows,
    list_subscribers,
    read_csv_emails,
    remove_subscribers,
    store_address,
)
from pipeline.cli.base import err, out, progress_bar, settings, subscribers_app
from pipeline.errors import PapermailError
from pipeline.models import Subscriber, SubscriberStatus
from pipeline.settings import Settings
from pipeline.text import terminal_text

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
    with Session(service.engine(settings())) as session:
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
    report = ImportReport()
    with Session(service.engine(cfg)) as session, progress_bar() as progress:
        bar = progress.add_task("importing", total=len(rows))
        try:
            import_rows(session, rows=rows, confirmed=not pending, force_consent=record, report=report,
                        progress=lambda done: progress.update(bar, completed=done))
        except Exception:
            _send_confirmations(cfg, report.to_confirm)  # the chunks committed before the error are stored
            raise
    out.print(f"added {report.added}, already subscribed {report.already}, "
              f"left unsubscribed/bounced/erased {report.kept_unsubscribed}, invalid {len(report.invalid)}"
              + (f", made active again on your consent record {len(report.forced)}" if record else ""))
    for address in report.forced:
        err.print(f"  {address}: active again (consent: {record})", markup=False, highlight=False)
    for problem in report.invalid:
        err.print(f"  {problem}", markup=False, highlight=False)
    _send_confirmations(cfg, report.to_confirm)


def _send_confirmations(cfg: Settings, subscriber_ids: list[int]) -> None:
    if subscriber_ids:
        runner = service.runner_for(cfg)
        for subscriber_id in subscriber_ids:
            runner.send_confirmation(subscriber_id=subscriber_id)
        verb = "queued" if runner.queues else "sent"
        out.print(f"confirmation emails {verb}: {len(subscriber_ids)}")


@subscribers_app.command("export")
def subscribers_export(
    out_file: Annotated[Path | None, typer.Option("--out", help="CSV file to write (default: standard output).")] = None,
) -> None:
    """Export every subscriber with status and preferences as CSV."""
    with Session(service.engine(settings())) as session, progress_bar() as progress:
        bar = progress.add_task("exporting", total=session.exec(select(func.count()).select_from(Subscriber)).one())
        rows = export_rows(session)
        stream = out_file.open("w", newline="", encoding="utf-8") if out_file else sys.stdout
        try:
            writer = csv.DictWriter(stream, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            count = 0
            for row in rows:
                writer.writerow(row)
                count += 1
                if count % 1000 == 0:
                    progress.update(bar, completed=count)
        finally:
            if out_file:
                stream.close()
    err.print(f"{count} subscriber(s) exported{f' to {out_file}' if out_file else ''}")



@subscribers_app.command("remove")
def subscribers_remove(
    emails: Annotated[list[str], typer.Argument(help="Addresses to erase.")],
) -> None:
    """Erase addresses, their delivery records and their votes. (To stop mail but keep the address, they unsubscribe.)"""
    with Session(service.engine(settings())) as session:
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
    with Session(service.engine(settings())) as session:
        subs = list_subscribers(session, status=status_filter)
    for sub in subs:
        typer.echo(f"{terminal_text(sub.email)}\t{sub.status.value}\t{sub.created_at:%Y-%m-%d}")  # tab-separated for scripts
    err.print(f"{len(subs)} subscriber(s)")


@subscribers_app.command("clear-bounces")
def subscribers_clear_bounces(
    emails: Annotated[list[str], typer.Argument(help="Addresses known to work again.")],
) -> None:
    """Reset addresses' hard-bounce counts; "bounced" ones become active and are mailed again."""
    from pipeline.audience.bounces import clear_bounces

    cleared = 0
    with Session(service.engine(settings())) as session:
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
