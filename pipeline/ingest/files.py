"""Saved Hugging Face snapshots on disk: the offline source, and the bundled samples.

A snapshot is named ``hf_daily_papers_<YYYY-MM-DD>_<HHMM>Z.json``: the day of the
list and the UTC time it was fetched, which becomes the snapshot's ``fetched_at``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

from pipeline.errors import IngestError
from pipeline.ingest.hf import parse_day
from pipeline.ingest.records import ParseResult

DATA_DIR = Path(__file__).resolve().parent / "data"  # package data, shipped in the wheel
_STAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:_(\d{2})(\d{2})Z)?", re.ASCII)


def read_file(path: Path) -> bytes:
    """The file's bytes; ``IngestError`` with a one-line reason if it cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise IngestError(f"no such file: {path}") from exc
    except IsADirectoryError as exc:
        raise IngestError(f"{path} is a directory, not a snapshot file") from exc
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _stamp(path: Path) -> re.Match[str] | None:
    return _STAMP.search(Path(path).name)


def day_from_name(path: Path) -> date | None:
    """The list's day from a name like ``hf_daily_papers_2025-03-21_0600Z.json``."""
    match = _stamp(path)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def fetched_at_from_name(path: Path) -> datetime | None:
    """The fetch time (aware UTC) from a name like ``..._2025-03-21_0600Z.json``."""
    match = _stamp(path)
    if match is None or match[4] is None:
        return None
    try:
        return datetime(int(match[1]), int(match[2]), int(match[3]), int(match[4]), int(match[5]), tzinfo=UTC)
    except ValueError:
        return None


def sample_files() -> list[Path]:
    """The bundled sample snapshots, oldest fetch first."""
    files = [p for p in DATA_DIR.glob("*.json") if fetched_at_from_name(p) is not None]
    return sorted(files, key=lambda p: (fetched_at_from_name(p), p.name))


def snapshot_files(directory: Path) -> list[Path]:
    """The snapshot files in ``directory`` (names with a day and a fetch time), oldest fetch first.

    ``IngestError`` if it is not a readable directory or holds none.
    """
    try:
        found = [p for p in Path(directory).iterdir() if p.suffix == ".json" and fetched_at_from_name(p)]
    except NotADirectoryError:
        raise IngestError(f"{directory} is not a directory") from None
    except OSError as exc:
        raise IngestError(f"cannot read {directory}: {exc.strerror or exc}") from None
    if not found:
        raise IngestError(f"{directory} holds no snapshot files named like hf_daily_papers_2025-03-21_0600Z.json")
    return sorted(found, key=lambda p: (fetched_at_from_name(p), p.name))


def parse_file(path: Path, *, day: date | None = None) -> ParseResult:
    """A saved snapshot parsed like the live list, with ``source="file"``.

    The day comes from the file name unless given.
    """
    day = day or day_from_name(path)
    if day is None:
        raise IngestError(f"cannot tell the day of {Path(path).name}; name it like hf_daily_papers_2025-03-21_0600Z.json")
    return parse_day(read_file(path), day=day, source="file")
