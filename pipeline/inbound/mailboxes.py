"""Reading raw messages from where an MTA leaves them: stdin, a Maildir, .eml files or an mbox."""

from __future__ import annotations

import functools
import mailbox
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.errors import ConfigError


def read_messages(path: Path | None) -> Iterator[bytes]:
    """The raw messages at ``path``, one at a time.

    None or "-": one message on standard input (as an MTA's pipe transport delivers it). A
    directory: a Maildir (its ``new/`` and ``cur/``) or else a folder of ``*.eml`` files. A file:
    an mbox when it starts with a "From " line, otherwise one message. Nothing is moved or
    deleted: reading the same mailbox again is harmless, since each bounce counts once.
    """
    if path is None or str(path) == "-":
        data = sys.stdin.buffer.read()
        if data.strip():
            yield data
        return
    if path.is_dir():
        if (path / "new").is_dir() or (path / "cur").is_dir():
            files = [f for sub in ("new", "cur") if (path / sub).is_dir() for f in sorted((path / sub).iterdir())]
        else:
            files = sorted(f for f in path.iterdir() if f.suffix.lower() == ".eml")
        for file in files:
            if file.is_file() and not file.name.startswith("."):
                yield file.read_bytes()
        return
    with path.open("rb") as handle:
        is_mbox = handle.read(5) == b"From "
    if not is_mbox:
        yield path.read_bytes()
        return
    box = mailbox.mbox(path, create=False)
    try:
        for key in box.iterkeys():
            yield box.get_bytes(key)
    finally:
        box.close()


def take_new(maildir: Path) -> Iterator[tuple[bytes, Callable[[], None]]]:
    """Each message in the Maildir's ``new/``, with a function that files it in ``cur/`` as seen.

    The caller files a message once it has recorded what it says, so a run that stops half-way
    leaves the rest in ``new/`` for the next one (and a message read twice counts once anyway).
    """
    new, cur = maildir / "new", maildir / "cur"
    if not new.is_dir() or not cur.is_dir():
        raise ConfigError(f"{maildir} is not a Maildir (it needs new/ and cur/)")
    for path in sorted(new.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        info = "" if ":" in path.name else ":2,S"  # Maildir's "seen" flag (cr.yp.to/proto/maildir.html)
        yield path.read_bytes(), functools.partial(os.replace, path, cur / (path.name + info))
