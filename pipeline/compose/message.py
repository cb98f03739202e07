"""An issue's MIME message, encoded once, with slots for each subscriber's bytes.

Building a ~100 KB message with ``EmailMessage.as_bytes()`` per subscriber costs
milliseconds; here the headers and both parts are encoded once per issue and
each subscriber only costs a ``bytes.join`` of the fixed segments with their
own recipient, Message-ID and links. The body parts are quoted-printable; each
body slot sits between two soft line breaks (``=\\r\\n``) so the substituted
value never disturbs the encoded lines around it, and the value itself is
QP-escaped and wrapped to 76 columns (RFC 2045 §6.7).
"""

from __future__ import annotations

import email.quoprimime
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from pipeline.compose import slots
from pipeline.errors import RenderError

CRLF = b"\r\n"
HEADER = "header"
QP = "qp"

_SLOT_RE = re.compile("|".join(re.escape(s) for s in slots.BODY_SLOTS))
_HEADER_SLOT_RE = re.compile(
    "|".join(re.escape(s) for s in (slots.RECIPIENT, slots.MESSAGE_ID, slots.UNSUBSCRIBE_URL, slots.UNSUBSCRIBE_MAILTO))
)


@dataclass(frozen=True, slots=True)
class Recipient:
    """The per-subscriber values of one message."""

    address: str
    message_id: str  # without angle brackets
    unsubscribe_url: str
    unsubscribe_mailto: str  # mailto: URI without the scheme, e.g. "unsub@host?subject=..."
    preferences_url: str
    feedback_url: str  # a card's "more / less like this" link adds ?paper=…&vote=…

    def slot_values(self) -> dict[str, str]:
        values = {
            slots.RECIPIENT: self.address,
            slots.MESSAGE_ID: self.message_id,
            slots.UNSUBSCRIBE_URL: self.unsubscribe_url,
            slots.UNSUBSCRIBE_MAILTO: self.unsubscribe_mailto,
            slots.PREFERENCES_URL: self.preferences_url,
            slots.FEEDBACK_URL: self.feedback_url,
        }
        for value in values.values():
            # Values come from our own validated data, but a header must never get a line break.
            if "\r" in value or "\n" in value or not value.isascii():
                raise RenderError(f"unsafe per-subscriber value: {value!r}")
        return values


def qp_value(value: str) -> bytes:
    """A slot value as quoted-printable: '=' escaped, lines wrapped with soft breaks, and no line
    starting with '.' (on the wire a server would take it for dot-stuffing, RFC 5321 §4.5.2)."""
    if "=" not in value and not value.startswith("."):  # the usual case: URLs, cut anywhere but before a dot
        pieces, start = [], 0
        while len(value) - start > 75:
            cut = start + 75
            while value[cut] == "." and cut > start + 1:
                cut -= 1
            pieces.append(value[start:cut])
            start = cut
        pieces.append(value[start:])
    else:
        pieces, line = [], ""
        for char in value:
            escaped = "=3D" if char == "=" else char
            if len(line) + len(escaped) > 75:
                pieces.append(line)
                line = ""
            if not line and escaped == ".":
                escaped = "=2E"
            line += escaped
        pieces.append(line)
    return "=\r\n".join(pieces).encode("ascii")


Segment = bytes | tuple[str, str]  # literal bytes, or (slot, encoding)


def _split(text: str, pattern: re.Pattern[str], encoding: str) -> list[Segment]:
    out: list[Segment] = []
    pos = 0
    for match in pattern.finditer(text):
        out.append(text[pos : match.start()].encode("utf-8"))
        out.append((match.group(0), encoding))
        pos = match.end()
    out.append(text[pos:].encode("utf-8"))
    return out


def part_head(content_type: str) -> bytes:
    return (f"Content-Type: {content_type}; charset=\"utf-8\"\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode()


def qp_body(body: str) -> list[Segment]:
    """``body`` quoted-printable, its slots kept as slots; ending at a line boundary (a soft break if the
    text does not end with a newline), so that encoded bodies can follow one another."""
    out: list[Segment] = []
    pieces = _SLOT_RE.split(body)
    found = _SLOT_RE.findall(body)
    for i, piece in enumerate(pieces):
        # body_encode works on one character per octet: hand it the UTF-8 bytes as latin-1.
        octets = piece.encode("utf-8").decode("latin-1")
        out.append(email.quoprimime.body_encode(octets, maxlinelen=76, eol="\r\n").encode("ascii"))
        if i < len(found):
            out.append(b"=\r\n")
            out.append((found[i], QP))
            out.append(b"=\r\n")
    if body and not body.endswith("\n"):
        out.append(b"=\r\n")
    return out


def head_segments(*, subject: str, sender: Address, list_id: str, list_name: str, archive_url: str,
                  date: datetime, boundary: str) -> list[Segment]:
    """The message's header fields, its per-subscriber ones as slots. ``subject`` and ``list_name`` must
    already be header-safe."""
    for field in (subject, list_name, list_id, archive_url):
        if "\r" in field or "\n" in field:
            raise RenderError("a header value contains a line break")
    # Headers that may need RFC 2047 encoding go through the email package's folding;
    # the per-subscriber ones are written directly so no fold lands inside a slot.
    encoded = EmailMessage(policy=SMTP)
    encoded["From"] = sender
    encoded["Subject"] = subject
    encoded["List-Id"] = f"{list_name} <{list_id}>"
    head = "".join(SMTP.fold(name, value) for name, value in encoded.items())
    head += (
        f"To: {slots.RECIPIENT}\r\n"
        f"Date: {format_datetime(date)}\r\n"
        f"Message-ID: <{slots.MESSAGE_ID}>\r\n"
        # RFC 8058: exactly one https URI plus a mailto, and the one-click POST marker.
        f"List-Unsubscribe: <{slots.UNSUBSCRIBE_URL}>,\r\n <mailto:{slots.UNSUBSCRIBE_MAILTO}>\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        f"List-Archive: <{archive_url}>\r\n"
        "Precedence: list\r\n"
        "Auto-Submitted: auto-generated\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
        "\r\n"
    )
    segments = _split(head, _HEADER_SLOT_RE, HEADER)
    segments.append(b"This is a multipart message in MIME format.\r\n")
    present = {s[0] for s in segments if not isinstance(s, bytes)}
    expected = {slots.RECIPIENT, slots.MESSAGE_ID, slots.UNSUBSCRIBE_URL, slots.UNSUBSCRIBE_MAILTO}
    if not expected <= present:
        raise RenderError(f"message headers lost a placeholder: {sorted(expected - present)}")
    return segments


def new_boundary() -> str:
    return f"=_papermail_{secrets.token_hex(12)}"


def body_segments(boundary: str, text: list[Segment], html: list[Segment]) -> list[Segment]:
    """Both alternatives, each already encoded by :func:`qp_body`. RFC 2046 §5.1.4: the last alternative is
    the preferred one, so text first, HTML last."""
    return [f"\r\n--{boundary}\r\n".encode(), part_head("text/plain"), *text, CRLF,
            f"\r\n--{boundary}\r\n".encode(), part_head("text/html"), *html, CRLF,
            f"\r\n--{boundary}--\r\n".encode()]


class MessageTemplate:
    """One issue's message as fixed segments and per-subscriber slots."""

    def __init__(self, segments: list[Segment]) -> None:
        self._segments = merged(segments)
        # Stuffed after merging: a '.' that starts a segment may start a line the segment before ended.
        self._wire = [dot_stuff(s) if isinstance(s, bytes) else s for s in self._segments]

    @classmethod
    def build(
        cls,
        *,
        subject: str,
        html: str,
        text: str,
        sender: Address,
        list_id: str,
        list_name: str,
        archive_url: str,
        date: datetime,
    ) -> MessageTemplate:
        """Encode an issue once. ``subject`` and ``list_name`` must already be header-safe."""
        boundary = new_boundary()
        head = head_segments(subject=subject, sender=sender, list_id=list_id, list_name=list_name,
                             archive_url=archive_url, date=date, boundary=boundary)
        return cls([*head, *body_segments(boundary, qp_body(text), qp_body(html))])

    def slot_counts(self) -> dict[str, int]:
        """How many times each slot occurs in the message."""
        counts: dict[str, int] = {}
        for seg in self._segments:
            if not isinstance(seg, bytes):
                counts[seg[0]] = counts.get(seg[0], 0) + 1
        return counts

    def render(self, recipient: Recipient) -> bytes:
        """The message as an .eml file: CRLF line ends, not dot-stuffed."""
        return _join(self._segments, recipient)

    def render_wire(self, recipient: Recipient) -> bytes:
        """The message as SMTP DATA (dot-stuffed, ending in CRLF), without the final '.'."""
        return _join(self._wire, recipient)


def dot_stuff(data: bytes) -> bytes:
    """SMTP transparency (RFC 5321 §4.5.2): double a '.' that starts a line after the first (a message
    starts with a header field, never with a '.')."""
    return data.replace(b"\r\n.", b"\r\n..")


def merged(segments: list[Segment]) -> list[Segment]:
    """Consecutive literal segments as one."""
    out: list[Segment] = []
    run: list[bytes] = []
    for seg in segments:
        if isinstance(seg, bytes):
            run.append(seg)
            continue
        if run:
            out.append(b"".join(run))
            run = []
        out.append(seg)
    if run:
        out.append(b"".join(run))
    return [seg for seg in out if seg != b""]


def _join(segments: list[Segment], recipient: Recipient) -> bytes:
    values = recipient.slot_values()
    encoded: dict[tuple[str, str], bytes] = {}
    parts: list[bytes] = []
    for seg in segments:
        if isinstance(seg, bytes):
            parts.append(seg)
            continue
        chunk = encoded.get(seg)
        if chunk is None:
            value = values[seg[0]]
            chunk = encoded[seg] = qp_value(value) if seg[1] == QP else value.encode("ascii")
        parts.append(chunk)
    return b"".join(parts)
