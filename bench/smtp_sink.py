"""A fast SMTP sink for the benchmarks: accepts everything, keeps nothing but how many messages each recipient got.

    python bench/smtp_sink.py PORT

The tests' server (tests/support/smtp.py, aiosmtpd) keeps every message and answers as scripted; this one
only has to keep ahead of the sender, in a process of its own. Two extra verbs read its counts: XSTAT
(messages, distinct recipients, recipients with more than one message, in the reply) and XDUMP PATH
(the per-recipient counts written to PATH as JSON).
"""

from __future__ import annotations

import asyncio
import collections
import json
import smtplib
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.services import free_port  # noqa: E402


class Sink(asyncio.Protocol):
    """One SMTP connection: every command is accepted; a message's end counts it for its recipients."""

    per_rcpt: collections.Counter[str] = collections.Counter()
    messages = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = bytearray()
        self.scan = 0  # where the search for the end of DATA resumes, so a large message is not rescanned
        self.in_data = False
        self.rcpts: list[str] = []
        self.transport.write(b"220 sink ESMTP\r\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        write = self.transport.write  # type: ignore[attr-defined]
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n", self.scan)
                if end < 0:
                    self.scan = max(0, len(self.buffer) - 4)
                    return
                del self.buffer[: end + 5]
                self.scan, self.in_data = 0, False
                Sink.messages += 1
                Sink.per_rcpt.update(self.rcpts)
                self.rcpts = []
                write(b"250 2.0.0 ok\r\n")
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                return
            line = bytes(self.buffer[:line_end])
            del self.buffer[: line_end + 2]
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                write(b"250-sink\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
            elif verb == b"MAIL" or verb == b"RSET":
                self.rcpts = []
                write(b"250 ok\r\n")
            elif verb == b"RCPT":
                text = line.decode("utf-8", "replace")
                self.rcpts.append(text[text.find("<") + 1 : text.find(">")])
                write(b"250 ok\r\n")
            elif verb == b"DATA":
                self.in_data = True
                self.buffer[0:0] = b"\r\n"  # the terminator search needs the CRLF that ended the DATA line
                write(b"354 go ahead\r\n")
            elif verb == b"XSTA":
                dup = sum(1 for c in Sink.per_rcpt.values() if c > 1)
                write(f"250 {Sink.messages} {len(Sink.per_rcpt)} {dup}\r\n".encode())
            elif verb == b"XDUM":
                Path(line[6:].decode()).write_text(json.dumps(Sink.per_rcpt))
                write(b"250 dumped\r\n")
            elif verb == b"QUIT":
                write(b"221 bye\r\n")
                self.transport.close()  # type: ignore[attr-defined]
                return
            else:
                write(b"250 ok\r\n")


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Sink, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def start_sink(**popen: Any) -> tuple[subprocess.Popen, int]:
    """This sink in a process of its own on a free port, once it listens: (process, port)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(port)], stdout=subprocess.PIPE,
                            text=True, **popen)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc, port


def sink_stats(port: int) -> tuple[int, int, int]:
    """(messages, distinct recipients, recipients with more than one message)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        code, reply = smtp.docmd("XSTAT")
    messages, distinct, dup = (int(x) for x in reply.split())
    return messages, distinct, dup


def sink_dump(port: int, path: Path) -> dict[str, int]:
    """How many messages each recipient got, through ``path`` (a file the sink can write)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.docmd(f"XDUMP {path}")
    return json.loads(path.read_text())


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
