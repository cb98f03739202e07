"""What each batch builds once and each subscriber costs: the encoded template per size, and a
recipient's own address, Message-ID and signed links."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from pipeline.audience.subscribers import sendable_address
from pipeline.audience.tokens import Purpose
from pipeline.compose.links import UNSUBSCRIBE, Links
from pipeline.compose.message import MessageTemplate, Recipient
from pipeline.compose.message_ids import make_message_id
from pipeline.models import Issue, IssueVariant, utcnow


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


def build_template(issue: Issue, ctx: SendContext, variant: IssueVariant | None = None) -> MessageTemplate:
    rendered = variant or issue
    return MessageTemplate.build(
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        sender=ctx.sender_header,  # type: ignore[arg-type]
        list_id=ctx.list_id,
        list_name=ctx.list_name,
        archive_url=Links(base_url=ctx.base_url, secret_key=ctx.secret_key).issue(issue.date, issue.edition),
        date=issue.send_started_at or utcnow(),
    )


class TemplateCache:
    """One encoded message per size the recipients chose, built on first use by this batch."""

    def __init__(self, engine: Engine, issue: Issue, ctx: SendContext) -> None:
        self._engine, self._issue, self._ctx = engine, issue, ctx
        self._built: dict[int, MessageTemplate] = {}
        self.issue_id: int = issue.id  # type: ignore[assignment]

    def __call__(self, size: int) -> MessageTemplate:
        template = self._built.get(size)
        if template is None:
            variant = None
            if size != self._issue.size:
                with Session(self._engine) as session:
                    variant = session.exec(select(IssueVariant).where(
                        IssueVariant.issue_id == self._issue.id, IssueVariant.size == size)).first()
            # A size without its rendering (it cannot happen through start_sending) gets the default.
            template = self._built[size] = build_template(self._issue, self._ctx, variant)
        return template


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


