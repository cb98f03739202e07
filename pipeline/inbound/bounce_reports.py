"""What a bounce message says: which addresses failed for good, which only for now, and why.

Pure parsing, no database. ``flufl.bounce`` (Mailman's detectors) recognises the
many non-standard formats; RFC 3464 delivery-status parts are also read here
directly, because flufl reports addresses only, and an operator needs the status
code and the remote server's words. The report also carries the Message-ID of
the message that bounced (see :mod:`pipeline.compose.message_ids`), which is what ties a
bounce to one of our deliveries.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from typing import NamedTuple

from flufl.bounce import all_failures

from pipeline.audience.subscribers import normalize_email
from pipeline.errors import SubscriberError
from pipeline.inbound.mail_parser import TooDeeplyNested, parse_message

log = logging.getLogger(__name__)
# flufl.bounce logs a traceback (log.exception) for any detector that chokes on odd input, which
# with no logging configured reaches stderr through logging's last-resort handler: one malformed
# message in a mailbox would print a traceback from `papermail bounces`. A NullHandler keeps it
# quiet there and still lets the records reach handlers an application configures.
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())

REASON_LENGTH = 500  # Subscriber.last_bounce_reason
KEY_LENGTH = 255  # ProcessedBounce.message_id


@dataclass(frozen=True)
class BounceReport:
    """What one bounce message says. Addresses are normalized; the two sets never overlap."""

    permanent: frozenset[str]
    temporary: frozenset[str]
    original_message_id: str | None  # the Message-ID of the message that bounced, without <>
    reason: str  # one line for the whole bounce ("" when it is not a bounce)
    bounce_id: str | None = None  # the bounce's own Message-ID (or a digest of it): the key for "seen already"
    reasons: Mapping[str, str] = field(default_factory=dict, hash=False)  # per address: "5.1.1 User unknown"

    @property
    def is_bounce(self) -> bool:
        return bool(self.permanent or self.temporary)

    def reason_for(self, address: str) -> str:
        return self.reasons.get(address) or self.reason


EMPTY = BounceReport(permanent=frozenset(), temporary=frozenset(), original_message_id=None, reason="")


class _Recipient(NamedTuple):
    address: str
    permanent: bool
    reason: str


# RFC 3463 enhanced status codes: class.subject.detail.
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# An SMTP reply line in a human-readable bounce: "550 5.1.1 <a@b>: User unknown", "550-5.2.2 ...".
# The look-behind keeps "[198.51.100.7]" from reading as reply code 100.
_REPLY = re.compile(r"(?<![\w.\[-])([45]\d\d)[ -](?:([45]\.\d{1,3}\.\d{1,3})\s+)?(\S.*)")
_REPLY_PREFIX = re.compile(r"\b[245]\d\d[ -](?=[245]\.\d{1,3}\.\d{1,3}\b)")
# Where a plain-text bounce starts quoting the returned message (Exim, Sendmail, qmail, Exchange).
_QUOTE_START = re.compile(
    r"^\s*(-{2,}.*\b(copy|original|returned|undelivered|rejected)\b|.*below this line)", re.IGNORECASE
)
_MESSAGE_ID_LINE = re.compile(r"^Message-ID:\s*<?([^<>\s]+@[^<>\s]+)>?", re.IGNORECASE | re.MULTILINE)

# RFC 3463 §3: words for the common codes, for a report whose MTA gave no diagnostic.
_STATUS_WORDS = {
    "1.1": "bad destination mailbox address",
    "1.2": "bad destination system address",
    "1.3": "bad destination mailbox address syntax",
    "1.6": "destination mailbox has moved",
    "2.1": "mailbox disabled",
    "2.2": "mailbox full",
    "2.3": "message too long for the mailbox",
    "4.4": "unable to route",
    "4.7": "delivery time expired",
    "7.1": "delivery not authorized, message refused",
}


def parse_bounce(raw: bytes) -> BounceReport:
    """Read one bounce message. Anything that is not a bounce (or not mail at all) gives an empty report.

    A message nested too deeply to read raises :class:`~pipeline.inbound.mail_parser.TooDeeplyNested`, so
    that the caller can say why it was not counted.
    """
    try:
        msg = parse_message(raw, policy=email.policy.compat32)
        return _report(msg, raw)
    except TooDeeplyNested:
        raise
    except Exception:  # noqa: BLE001  one unreadable message must not stop a mailbox being processed
        log.warning("unreadable message treated as not a bounce", exc_info=True)
        return EMPTY


def _report(msg: Message, raw: bytes) -> BounceReport:
    found: dict[str, _Recipient] = {}
    for recipient in _dsn_recipients(msg):
        # A report can list an address twice (Original- and Final-Recipient folded into one, or
        # two MTAs); a permanent failure outranks a delay.
        if recipient.address not in found or (recipient.permanent and not found[recipient.address].permanent):
            found[recipient.address] = recipient
    notification = _notification_text(msg)
    temporary, permanent = _flufl_failures(msg)
    # flufl's detectors cover the formats that are not RFC 3464 (Exim, qmail, Exchange, ...). For an
    # address the delivery-status part speaks of, that part's Status decides: flufl treats every
    # "Action: failed" as permanent, even a 4.4.7 "gave up after retrying" that is temporary by its code.
    for addresses, is_permanent in ((permanent, True), (temporary, False)):
        for address in addresses:
            if address not in found:
                found[address] = _Recipient(address, is_permanent, _text_reason(notification, address, is_permanent))
    if not found:
        return EMPTY
    perm = frozenset(a for a, r in found.items() if r.permanent)
    temp = frozenset(found) - perm
    reasons = {a: r.reason[:REASON_LENGTH] for a, r in found.items()}
    if len(reasons) == 1:
        summary = next(iter(reasons.values()))
    else:
        summary = "; ".join(f"{a}: {reasons[a]}" for a in sorted(reasons))
    return BounceReport(
        permanent=perm,
        temporary=temp,
        original_message_id=_original_message_id(msg),
        reason=summary[:REASON_LENGTH],
        bounce_id=_bounce_id(msg, raw),
        reasons=reasons,
    )


def _flufl_failures(msg: Message) -> tuple[set[str], set[str]]:
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001  a detector choking on odd input leaves the RFC 3464 reading
        log.info("flufl.bounce could not scan a message", exc_info=True)
        return set(), set()
    return _addresses(temporary), _addresses(permanent)


def _addresses(raw: frozenset[bytes]) -> set[str]:
    out = set()
    for item in raw:
        address = _normalize(item.decode("ascii", "replace"))
        if address:
            out.add(address)
    return out


def _normalize(value: str) -> str | None:
    """The address as subscribers are stored; a lowercase best effort when it does not validate."""
    value = value.strip().strip("<>").strip()
    if "@" not in value or any(c.isspace() for c in value):
        return None
    try:
        return normalize_email(value)
    except SubscriberError:
        # Still worth reporting ("not a subscriber"); it cannot match a stored address anyway.
        return value.lower()


def _parts(msg: Message) -> Iterator[Message]:
    """Every part of the report itself, not descending into the returned message."""
    yield msg
    if msg.get_content_maintype() == "message" or not msg.is_multipart():
        return
    for part in msg.get_payload():
        if isinstance(part, Message):
            yield from _parts(part)


def _header_blocks(part: Message) -> list[Message]:
    """The field groups of a message/delivery-status part (RFC 3464 §2.1)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    # Some MTAs encode the part (base64, quoted-printable): then it arrives as one string.
    data = part.get_payload(decode=True) or b""
    body = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return [HeaderParser().parsestr(block) for block in re.split(r"\r?\n\s*\r?\n", body) if block.strip()]


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _dsn_recipients(msg: Message) -> Iterator[_Recipient]:
    for part in _parts(msg):
        # RFC 6533 message/global-delivery-status is the same with UTF-8 allowed.
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        for block in _header_blocks(part):
            recipient = _dsn_recipient(block)
            if recipient is not None:
                yield recipient


def _dsn_recipient(block: Message) -> _Recipient | None:
    # Original-Recipient is the address we sent to; Final-Recipient may be an alias it expanded to.
    address = None
    for name in ("Original-Recipient", "Final-Recipient"):
        kind, _, value = _field(block, name).partition(";")
        if not value and "@" in kind:  # non-compliant: no address type
            kind, value = "rfc822", kind
        if kind.strip().lower() in ("rfc822", "utf-8") and value:
            address = _normalize(value)
            if address:
                break
    if address is None:
        return None
    action = (_field(block, "Action").split() or [""])[0].lower()
    diagnostic = _field(block, "Diagnostic-Code")
    status = _STATUS.search(_field(block, "Status")) or _STATUS.search(diagnostic)
    if action.startswith("delayed"):
        permanent = False
    elif action.startswith(("failed", "error")):  # opensmtpd says "error"
        permanent = status is None or status.group(1) == "5"
    elif not action and status is not None and status.group(1) in "45":
        permanent = status.group(1) == "5"  # Action is mandatory; the Status alone still says enough
    else:
        return None  # delivered, relayed, expanded: not a failure
    return _Recipient(address, permanent, _dsn_reason(status, diagnostic, permanent))


def _dsn_reason(status: re.Match[str] | None, diagnostic: str, permanent: bool) -> str:
    code = status.group(0) if status else ""
    words = _clean_diagnostic(diagnostic)
    if not words and status is not None:
        words = _STATUS_WORDS.get(f"{status.group(2)}.{status.group(3)}", "")
    if not code and not words:
        return "permanent failure" if permanent else "temporary failure"
    return f"{code} {words}".strip()


def _clean_diagnostic(diagnostic: str) -> str:
    """'smtp; 550 5.1.1 <a@b>: Recipient address rejected' -> 'Recipient address rejected'."""
    text_ = re.sub(r"^[\w-]+;\s*", "", diagnostic)  # the diagnostic type, "smtp;" or "X-Postfix;"
    text_ = _REPLY_PREFIX.sub("", text_)  # Gmail repeats "552-5.2.2" on every continuation line
    text_ = re.sub(r"^[245]\d\d[ -]\s*", "", text_)
    text_ = re.sub(r"^[245]\.\d{1,3}\.\d{1,3}\s*", "", text_)
    text_ = re.sub(r"\s+[245]\.\d{1,3}\.\d{1,3}(?=\s)", "", text_)
    text_ = re.sub(r"^<[^>]*>[:.,]?\s*", "", text_)  # the address, echoed back by the server
    return " ".join(text_.split())


def _notification_text(msg: Message) -> str:
    """The human-readable part of the bounce, cut where it starts quoting the returned message."""
    chunks = []
    for part in _parts(msg):
        if part.get_content_type() != "text/plain":
            continue
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            chunks.append(_decoded(data, part.get_content_charset()))
    lines = []
    for line in "\n".join(chunks).splitlines():
        if _QUOTE_START.match(line):
            break
        lines.append(line)
    return "\n".join(lines)


def _decoded(data: bytes, charset: str | None) -> str:
    """A text part's bytes as text. The charset is the sender's to name: an unknown one, or a codec that is
    no text encoding ("zlib") or cannot replace bad bytes ("idna"), reads as UTF-8 rather than failing the report."""
    try:
        return data.decode(charset or "utf-8", "replace")
    except (LookupError, UnicodeError):
        return data.decode("utf-8", "replace")


def _text_reason(notification: str, address: str, permanent: bool) -> str:
    """The SMTP reply a plain-text bounce quotes for this address, the first one it quotes otherwise."""
    lines = notification.splitlines()
    near = [i for i, line in enumerate(lines) if address in line.lower()]
    for start in [*near, 0]:
        window = lines[start:start + 8] if start in near else lines
        for line in window:
            match = _REPLY.search(line)
            if match:
                reply, status, rest = match.groups()
                words = _clean_diagnostic(rest)
                return f"{status or reply} {words}".strip()
    return "permanent failure" if permanent else "temporary failure"


def _strip_id(value: object) -> str | None:
    found = re.search(r"<([^<>\s]+)>", str(value)) or re.search(r"(\S+@\S+)", str(value))
    return found.group(1)[:KEY_LENGTH] if found else None


def _original_message_id(msg: Message) -> str | None:
    """The Message-ID of the message that bounced (as Delivery.message_id stores it, without <>)."""
    for part in _parts(msg):
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message) and inner.get("Message-ID"):
                return _strip_id(inner["Message-ID"])
        elif kind in ("text/rfc822-headers", "text/global-headers"):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                headers = HeaderParser().parsestr(data.decode("utf-8", "replace"))
                if headers.get("Message-ID"):
                    return _strip_id(headers["Message-ID"])
        elif kind == "message/delivery-status":
            for block in _header_blocks(part):
                if block.get("X-Original-Message-ID"):  # Gmail's per-message field
                    return _strip_id(block["X-Original-Message-ID"])
    # Exim and others quote the returned message inline, after the notification.
    for part in _parts(msg):
        if part.get_content_type() == "text/plain":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                found = _MESSAGE_ID_LINE.search(data.decode("utf-8", "replace"))
                if found:
                    return found.group(1)[:KEY_LENGTH]
    return None


def _bounce_id(msg: Message, raw: bytes) -> str:
    """The bounce's own Message-ID; a digest of the message when it has none (or one too long to store)."""
    own = _strip_id(msg["Message-ID"]) if msg["Message-ID"] else None
    if own and len(own) < KEY_LENGTH:
        return own
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def counts_against_address(reason: str) -> bool:
    """Whether a permanent failure says something about the address itself.

    5.7.x is policy (our IP on a blocklist, DMARC): counting it would mark a whole
    provider's subscribers bounced for a problem of ours. 5.2.2 (mailbox full) and
    552 clear up on their own (Mailman treats 552 as temporary too). The rest —
    5.1.x no such user, 5.2.1 disabled, Exchange's 5.4.1 — count.
    """
    status = _STATUS.search(reason)
    if status is not None:
        return not (status.group(2) == "7" or (status.group(2), status.group(3)) == ("2", "2"))
    return not reason.lstrip().startswith("552")
