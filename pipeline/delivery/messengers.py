"""Messengers: where encoded messages go. Chosen from SMTP_URL by ``open_messenger``.

SMTP failures come back as data (``SendResult``), sorted the way RFC 5321 and
Mailman sort them, so one refused address never stops a batch:

    2yz            sent: the server took responsibility (RFC 1123 §5.3.3)
    4yz, 552       temporary: try again later
    5yz            permanent: keep the reply, do not retry
    lost after "." uncertain: it may have been delivered (RFC 1047)
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit

from pipeline.compose.message import MessageTemplate, Recipient, dot_stuff
from pipeline.delivery.dkim import DkimSigner
from pipeline.errors import DeliveryError

Outcome = Literal["sent", "temporary", "permanent", "uncertain"]


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    code: int | None
    reply: str

    @classmethod
    def from_reply(cls, code: int, reply: bytes | str) -> SendResult:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        text = f"{code} {' '.join(text.split())}"[:1000]
        if 200 <= code < 300:
            return cls("sent", code, text)
        # Mailman's rule: code >= 500 and code != 552 is permanent (552 "storage exceeded" may clear).
        if code >= 500 and code != 552:
            return cls("permanent", code, text)
        return cls("temporary", code, text)


class Messenger(Protocol):
    def wire_for(self, template: MessageTemplate, recipient: Recipient) -> bytes:
        """The bytes ``send`` takes for one subscriber's copy of an issue (signed when DKIM is on)."""

    def send(self, *, sender: str, recipient: Recipient, wire: bytes, next_rcpt: str | None = None,
             meanwhile: Callable[[], object] | None = None) -> SendResult:
        """One subscriber's copy, as ``wire_for`` made it. ``next_rcpt`` is whom the next call will send to,
        if known; ``meanwhile`` is work to do while the server reads this message."""

    def send_message(self, *, sender: str, rcpt: str, message: bytes) -> SendResult:
        """A one-off message (a confirmation), already encoded with CRLF line ends."""

    def close(self) -> None: ...


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9@._+-]")


class OutboxMessenger:
    """Writes each message as an .eml file: ``<outbox>/<issue-date>/<address>.eml``."""

    def __init__(self, outbox: Path, *, folder: str, dkim: DkimSigner | None = None) -> None:
        self.folder = outbox / folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dkim = dkim

    def wire_for(self, template: MessageTemplate, recipient: Recipient) -> bytes:
        message = template.render(recipient)
        return message if self.dkim is None else self.dkim.sign(message)

    def send(self, *, sender: str, recipient: Recipient, wire: bytes, next_rcpt: str | None = None,
             meanwhile: Callable[[], object] | None = None) -> SendResult:
        sent = self._write(recipient.address, wire)
        if meanwhile is not None:
            meanwhile()
        return sent

    def send_message(self, *, sender: str, rcpt: str, message: bytes) -> SendResult:
        return self._write(rcpt, message if self.dkim is None else self.dkim.sign(message))

    def _write(self, rcpt: str, message: bytes) -> SendResult:
        path = self.folder / f"{_UNSAFE_NAME.sub('_', rcpt)}.eml"
        tmp = path.with_suffix(".eml.tmp")
        tmp.write_bytes(message)
        os.replace(tmp, path)  # a reader never sees half a message
        return SendResult("sent", 250, f"250 written to {path}")

    def close(self) -> None:
        pass


_ENVELOPE_OK = ((250,), (250, 251), (354,))  # MAIL, RCPT, DATA


class SMTPMessenger:
    """Sends over one reused SMTP connection, reconnecting after a drop.

    The message is dot-stuffed once per issue by ``MessageTemplate``, so this
    speaks MAIL/RCPT/DATA itself instead of ``smtplib.sendmail``, which would
    run its dot-escaping regex over every 100 KB message again.

    With PIPELINING, a message's content and the next message's MAIL, RCPT and
    DATA go in one write (RFC 2920 §3.1 lets content open a group): one round trip
    per message instead of two. The next message's DATA then stands accepted; if
    that message is not sent after all, the connection is closed without the
    final ".", so the server discards the empty transaction (RFC 5321 §4.1.1.4).
    """

    def __init__(self, url: str, *, timeout: float, local_hostname: str | None = None,
                 dkim: DkimSigner | None = None) -> None:
        self.dkim = dkim
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.scheme == "smtps" else 587 if self.scheme == "smtp+starttls" else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self.local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None
        self._sent_ahead: tuple[tuple[str, str], list[tuple[int, bytes]]] | None = None  # (sender, rcpt), replies

    def _connect(self) -> smtplib.SMTP:
        try:
            if self.scheme == "smtps":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context(),
                    local_hostname=self.local_hostname,
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname)
                if self.scheme == "smtp+starttls":
                    smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo_or_helo_if_needed()
            if self.username:
                smtp.login(self.username, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            reason = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise DeliveryError(f"SMTP login to {self.host}:{self.port} refused: {exc.smtp_code} {reason}",
                                lasting=True) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"cannot connect to SMTP server {self.host}:{self.port}: {exc}") from exc
        return smtp

    def wire_for(self, template: MessageTemplate, recipient: Recipient) -> bytes:
        """The copy as SMTP DATA, dot-stuffed, without the final "."."""
        if self.dkim is None:
            return template.render_wire(recipient)
        # Signed as it will be read; on the wire, the template's own stuffed form behind the signature,
        # so only a few hundred bytes of header are stuffed per subscriber, not the whole message.
        return dot_stuff(self.dkim.signature(template.render(recipient))) + template.render_wire(recipient)

    def send(self, *, sender: str, recipient: Recipient, wire: bytes, next_rcpt: str | None = None,
             meanwhile: Callable[[], object] | None = None) -> SendResult:
        return self._transact(sender, recipient.address, wire, next_rcpt, meanwhile)

    def send_message(self, *, sender: str, rcpt: str, message: bytes) -> SendResult:
        if not message.endswith(b"\r\n"):
            message += b"\r\n"
        if self.dkim is not None:
            message = self.dkim.sign(message)
        return self._transact(sender, rcpt, dot_stuff(message))

    def _transact(self, sender: str, rcpt: str, wire: bytes, next_rcpt: str | None = None,
                  meanwhile: Callable[[], object] | None = None) -> SendResult:
        ahead, self._sent_ahead = self._sent_ahead, None
        if ahead is not None and ahead[0] != (sender, rcpt):
            self._drop()  # the envelope sent ahead was for another message: abandon it, unended
            ahead = None
        if self._smtp is None:
            # Raises DeliveryError: with no server there is no point trying the rest of the batch.
            self._smtp = self._connect()
        smtp = self._smtp
        ended = False  # the final "." has left: from then on the server may have taken the message
        try:
            replies = ahead[1] if ahead is not None else self._envelope(smtp, sender, rcpt)
            failed = next((r for r, ok in zip(replies, _ENVELOPE_OK) if r[0] not in ok), None)
            if failed is None:
                data = wire + b".\r\n"
                pipelined = next_rcpt is not None and smtp.has_extn("pipelining")
                if pipelined:
                    data += _envelope_commands(sender, next_rcpt)  # type: ignore[arg-type]
                smtp.send(data)  # sendall: it returns only once every byte, the dot too, is sent
                ended = True
                if meanwhile is not None:
                    meanwhile()  # while the server reads it (an interruption here leaves this message uncertain)
                result = SendResult.from_reply(*smtp.getreply())
                if pipelined:
                    self._read_ahead(smtp, (sender, next_rcpt))  # type: ignore[arg-type]
                return result
            if len(replies) == 3 and replies[2][0] == 354:
                # Pipelined DATA was accepted although MAIL or RCPT failed: end it empty (RFC 2920 §3.1).
                smtp.send(b".\r\n")
                smtp.getreply()
            self._reset(failed[0])
            return SendResult.from_reply(*failed)
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            if ended:
                return SendResult("uncertain", None, f"connection lost after the message was sent: {exc}"[:1000])
            # Before the final ".", nothing was accepted (RFC 5321 §4.1.1.4): trying again later is right.
            return SendResult("temporary", None, f"connection lost: {exc}"[:1000])

    def _read_ahead(self, smtp: smtplib.SMTP, envelope: tuple[str, str]) -> None:
        """The replies to the envelope sent ahead; a failure here concerns the next message, not this one."""
        try:
            self._sent_ahead = (envelope, [smtp.getreply() for _ in range(3)])
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _envelope(self, smtp: smtplib.SMTP, sender: str, rcpt: str) -> list[tuple[int, bytes]]:
        """MAIL, RCPT and DATA: in one round trip when the server offers PIPELINING (RFC 2920).

        Addresses were validated when stored, so they are written as they are
        rather than re-parsed by smtplib for every message.
        """
        if smtp.has_extn("pipelining"):
            smtp.send(_envelope_commands(sender, rcpt))
            return [smtp.getreply() for _ in range(3)]
        commands = (f"MAIL FROM:<{sender}>", f"RCPT TO:<{rcpt}>", "DATA")
        replies: list[tuple[int, bytes]] = []
        for command, ok in zip(commands, _ENVELOPE_OK):
            replies.append(smtp.docmd(command))
            if replies[-1][0] not in ok:
                break
        return replies

    def _reset(self, code: int) -> None:
        """Clear the refused transaction; 421 means the server is closing the channel."""
        if code == 421:
            self._drop()
            return
        try:
            self._smtp.rset()  # type: ignore[union-attr]
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        self._sent_ahead = None
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def close(self) -> None:
        if self._sent_ahead is not None:
            self._drop()  # in the middle of an envelope sent ahead: QUIT now would be read as message content
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._drop()


def _envelope_commands(sender: str, rcpt: str) -> bytes:
    return f"MAIL FROM:<{sender}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode()


def open_messenger(*, smtp_url: str | None, outbox: Path, folder: str, timeout: float,
                   dkim: DkimSigner | None = None) -> Messenger:
    """SMTP when a URL is set, otherwise .eml files in the outbox folder."""
    if smtp_url:
        return SMTPMessenger(smtp_url, timeout=timeout, dkim=dkim)
    return OutboxMessenger(outbox, folder=folder, dkim=dkim)
