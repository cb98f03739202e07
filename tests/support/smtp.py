"""A real SMTP server for the tests (aiosmtpd): it records every message and answers as scripted.

Scripted per recipient (a 4xx or 5xx reply to RCPT or to DATA, a connection dropped after the final
dot), slowed down, with or without PIPELINING, refusing every login: what real servers do to a sender.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

from tests.support.services import free_port


@dataclass
class Received:
    mail_from: str
    rcpt: list[str]
    data: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class SMTPScript:
    """How the server answers: per-recipient replies, a drop after DATA, a delay."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    drop_after_data: set[str] = field(default_factory=set)
    delay: float = 0.0
    pipelining: bool = False
    refuse_login: bool = False  # answer every AUTH with 535, as for bad credentials
    on_accept: Callable[[str], None] | None = None  # called with the recipient as a message is taken, before the 250


class RecordingHandler:
    def __init__(self, script: SMTPScript) -> None:
        self.script = script
        self.messages: list[Received] = []
        self.connections = 0
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: ANN001
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        if self.script.pipelining:  # aiosmtpd reads commands one by one, so it copes with pipelined ones
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001
        reply = self.script.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        if self.script.delay:
            await asyncio.sleep(self.script.delay)
        rcpt = envelope.rcpt_tos[0]
        if rcpt in self.script.drop_after_data:
            self.script.drop_after_data.discard(rcpt)
            server.transport.abort()  # the message arrived, the reply never leaves
            with self.lock:
                self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
            return "250 OK"
        reply = self.script.data_replies.get(rcpt)
        if reply:
            return reply
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        if self.script.on_accept is not None:
            self.script.on_accept(rcpt)
        return "250 2.0.0 queued"

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt]


@contextmanager
def recording_server(script: SMTPScript) -> Iterator[tuple[RecordingHandler, str]]:
    """A server answering as ``script`` says on a free port, while the block runs: (handler, smtp_url)."""
    handler = RecordingHandler(script)
    port = free_port()
    auth: dict[str, object] = {}
    if script.refuse_login:
        from aiosmtpd.smtp import AuthResult

        auth = {"authenticator": lambda *args: AuthResult(success=False, handled=False), "auth_require_tls": False}
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False, **auth)
    controller.start()
    try:
        yield handler, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()
