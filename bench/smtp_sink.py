"""A minimal, fast SMTP sink for benchmarks: accepts everything, keeps nothing, counts messages.

    python bench/smtp_sink.py PORT
"""

from __future__ import annotations

import asyncio
import sys


class Sink(asyncio.Protocol):
    count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = b""
        self.in_data = False
        self.transport.write(b"220 sink ESMTP\r\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                self.buffer = self.buffer[end + 5 :]
                self.in_data = False
                Sink.count += 1
                self.transport.write(b"250 2.0.0 ok\r\n")  # type: ignore[attr-defined]
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                return
            line, self.buffer = self.buffer[:line_end], self.buffer[line_end + 2 :]
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.transport.write(b"250-sink\r\n250-8BITMIME\r\n250 PIPELINING\r\n")  # type: ignore[attr-defined]
            elif verb == b"DATA":
                self.in_data = True
                # The terminator search needs the CRLF that ends the DATA line as a line start.
                self.buffer = b"\r\n" + self.buffer
                self.transport.write(b"354 go ahead\r\n")  # type: ignore[attr-defined]
            elif verb == b"QUIT":
                self.transport.write(b"221 bye\r\n")  # type: ignore[attr-defined]
                self.transport.close()  # type: ignore[attr-defined]
                return
            else:
                self.transport.write(b"250 ok\r\n")  # type: ignore[attr-defined]


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
