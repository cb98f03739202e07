"""Replies the ledger has not been told yet: one append-only file per claim, written before the next message.

A sender records its results in the ledger in bulk (every ``LEDGER_WRITE_EVERY``
messages or ``LEDGER_WRITE_SECONDS``, and at the end of each claim), not once per
message. Between two writes, each server reply is appended to the claim's journal
file with one ``write(2)`` before the next message goes out. A killed process loses
nothing the kernel already has, so whoever recovers its lease folds the journal into
the ledger and only the one message that may have been in flight becomes
``uncertain``. When the journal is out of reach (another machine, a lost disk), the
whole window may have gone out: the first ``window + 1`` rows still "sending" under
the claim become ``uncertain``, the rest go back to pending. The window travels in the
claim itself (``<random>/<window>``), so the recoverer never guesses it.

Folding is idempotent: a record only changes a row still held under its claim.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import ConfigError

Record = dict[str, object]


def new_claim(token: str, window: int) -> str:
    return f"{token}/{window}"


def claim_window(claim: str | None) -> int:
    """How many replies a claim's sender may hold before writing them; 0 for claims written one by one."""
    if not claim or "/" not in claim:
        return 0
    try:
        return max(0, int(claim.rsplit("/", 1)[1]))
    except ValueError:
        return 0


def _path(directory: Path, claim: str) -> Path:
    return directory / f"{claim.replace('/', '-')}.jsonl"


class Journal:
    """The open journal of one claim; without a directory it keeps nothing (the window bounds a crash)."""

    def __init__(self, directory: Path | None, claim: str) -> None:
        self._fd: int | None = None
        self.path: Path | None = None
        if directory is not None:
            self.path = _path(directory, claim)
            try:
                directory.mkdir(parents=True, exist_ok=True)
                # Created before the first claim, so "no file" always means "not this machine's".
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            except OSError as exc:
                raise ConfigError(f"cannot write the send journal in {directory} (JOURNAL_DIR): "
                                  f"{exc.strerror}") from exc

    def append(self, record: Record) -> None:
        if self._fd is not None:
            os.write(self._fd, json.dumps(record, separators=(",", ":")).encode() + b"\n")

    def written(self) -> None:
        """The ledger has every record so far: start the file again."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            assert self.path is not None
            self.path.unlink(missing_ok=True)


def read_journal(directory: Path | None, claim: str) -> list[Record] | None:
    """The records of a dead sender's claim, or None when its journal is not on this machine.

    A last line cut short by the crash is dropped: its reply was never complete.
    """
    if directory is None:
        return None
    path = _path(directory, claim)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return list(_records(data))


def _records(data: bytes) -> Iterator[Record]:
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("id"), int):
            yield record


def forget_journal(directory: Path | None, claim: str) -> None:
    if directory is not None:
        _path(directory, claim).unlink(missing_ok=True)
