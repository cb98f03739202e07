"""What each batch builds once and each subscriber costs: the encoded template per selection, and a
recipient's own address, Message-ID and signed links."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from pipeline.audience.subscribers import sendable_address
from pipeline.audience.tokens import Purpose
from pipeline.compose.assembly import Assembler
from pipeline.compose.blocks import IssueBlocks, Selection, top
from pipeline.compose.links import UNSUBSCRIBE, Links
from pipeline.compose.message import MessageTemplate, Recipient
from pipeline.compose.message_ids import make_message_id
from pipeline.delivery.selections import from_json
from pipeline.errors import IssueError
from pipeline.models import Issue, utcnow
from pipeline.models import Selection as SelectionRow


@dataclass(frozen=True, slots=True)
class SendContext:
    """What a batch needs besides the database; built from settings at the edge."""

    envelope_from: str
    sender_header: object  # email.headerregistry.Address for the From header
    list_id: str
    list_name: str
    base_url: str
    mail_domain: str
    unsubscribe_mailbox: str
    secret_key: str
    claim_size: int = 200
    lease_seconds: int = 300
    ledger_write_every: int = 100  # replies held before one bulk ledger write (journaled meanwhile)
    ledger_write_seconds: float = 1.0
    journal_dir: Path | None = None
    retry_base_seconds: int = 300
    max_attempts: int = 8
    failure_burst_limit: int = 50  # this many failures in a row pause the issue (bad credentials, a blocklist)
    bounce_limit: int = 2  # hard bounces (5xx about the address) before it is marked bounced


def assembler(issue: Issue, ctx: SendContext) -> Assembler:
    """The issue's blocks, ready to be joined into each selection's message: one per process and issue, so
    that every batch this process sends of it shares the encoded blocks and the messages joined so far."""
    if issue.blocks is None:
        raise IssueError(f"the issue of {issue.date} has no blocks: rebuild it (papermail build --force)")
    key = (issue.id, issue.built_at, issue.send_started_at, str(ctx.sender_header), ctx.list_id, ctx.list_name,
           ctx.base_url, ctx.secret_key)
    found = _ASSEMBLERS.get(key)
    if found is None:
        found = _ASSEMBLERS[key] = Assembler(
            IssueBlocks.from_json(issue.blocks),
            sender=ctx.sender_header,  # type: ignore[arg-type]
            list_id=ctx.list_id,
            list_name=ctx.list_name,
            archive_url=Links(base_url=ctx.base_url, secret_key=ctx.secret_key).issue(issue.date, issue.edition),
            date=issue.send_started_at or utcnow(),
        )
        while len(_ASSEMBLERS) > ISSUES_KEPT:
            _ASSEMBLERS.popitem(last=False)
    else:
        _ASSEMBLERS.move_to_end(key)
    return found


ISSUES_KEPT = 2  # a daily and a weekly issue may be sending at once
_ASSEMBLERS: OrderedDict[tuple[object, ...], Assembler] = OrderedDict()


def build_template(issue: Issue, ctx: SendContext, selection: Selection | None = None) -> MessageTemplate:
    """One selection's message (by default the issue's own size)."""
    return assembler(issue, ctx).template(top(min(issue.size, len(issue.items))) if selection is None else selection)


class TemplateCache:
    """Each delivery's message template: its selection's, joined from the issue's blocks on first use and
    shared by every reader with that selection. A delivery without one gets the top ``size`` papers."""

    def __init__(self, engine: Engine, issue: Issue, ctx: SendContext) -> None:
        self._engine = engine
        self._assembler = assembler(issue, ctx)
        self._candidates = len(issue.items)
        self._selections: dict[int, Selection] = {}
        self.issue_id: int = issue.id  # type: ignore[assignment]

    def prefetch(self, selection_ids: Iterable[int | None]) -> None:
        """Read the selections a claim needs that this batch has not read yet, in one query."""
        wanted = sorted({sid for sid in selection_ids if sid is not None and sid not in self._selections})
        if not wanted:
            return
        with Session(self._engine) as session:
            for sid, picks in session.exec(select(SelectionRow.id, SelectionRow.picks).where(
                    col(SelectionRow.id).in_(wanted))):
                self._selections[sid] = from_json(picks)  # type: ignore[index]

    def __call__(self, size: int, selection_id: int | None = None) -> MessageTemplate:
        if selection_id is None:
            return self._assembler.template(top(min(size, self._candidates)))
        if selection_id not in self._selections:
            self.prefetch([selection_id])
            if selection_id not in self._selections:
                raise IssueError(f"selection {selection_id} is missing")
        return self._assembler.template(self._selections[selection_id])


class RecipientFactory:
    """Per-subscriber values: address, Message-ID and signed links."""

    def __init__(self, issue: Issue, ctx: SendContext) -> None:
        self._day, self._edition = issue.date, issue.edition
        self._ctx = ctx
        self._links = Links(base_url=ctx.base_url, secret_key=ctx.secret_key)

    def __call__(self, email: str, uid: str, resend_id: int | None = None) -> Recipient:
        """UnsendableAddress for an address that cannot be written into a message."""
        ctx, links = self._ctx, self._links
        unsub = links.token(Purpose.unsubscribe, uid)
        return Recipient(
            address=sendable_address(email),
            message_id=make_message_id(day=self._day, edition=self._edition, uid=uid, resend_id=resend_id,
                                       domain=ctx.mail_domain),
            unsubscribe_url=links.url(UNSUBSCRIBE.format(token=unsub)),
            unsubscribe_mailto=f"{ctx.unsubscribe_mailbox}?subject=unsubscribe%20{unsub}",
            preferences_url=links.url(links.preferences(uid)),
            feedback_url=links.url(links.feedback(uid)),
        )


