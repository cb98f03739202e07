"""How fast ``subscribers import`` and ``export`` go on a large list. Prints figures; the machine is shared, so
compare runs made one after the other, not absolute numbers.

    python bench/import_bench.py [--n 100000] [--postgres URL]

Writes a CSV of N addresses (about 2 % repeated later in the file, 1 % invalid, 2 % already in the database as
active, pending, unsubscribed or bounced rows, 1 % erased, so only a suppression hash is left of them), then on a
fresh SQLite file (and with --postgres, the admin URL, on a new PostgreSQL database dropped afterwards) times:
the validation alone (``validate_new_address`` per row), the import (``read_csv_emails`` + ``import_rows`` +
commit, as the command does) and the export of the whole table to a CSV file (``export_rows``).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the harness the tests use: tests/support

from tests.support.services import fresh_postgres  # noqa: E402

SECRET = "bench-" + "x" * 32
STATUSES = ("active", "pending", "unsubscribed", "bounced")


def address(i: int) -> str:
    return f"Reader{i:06}@Example.org"  # mixed case: the import stores the normalized form


def write_csv(path: Path, n: int) -> tuple[list[str], list[str]]:
    """The CSV of ``n`` rows; returns (addresses already stored, addresses erased), both normalized."""
    existing, erased = [], []
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["email", "name"])
        for i in range(n):
            if i % 100 == 7:
                writer.writerow([f"not-an-address-{i}", "x"])
            elif i % 50 == 3 and i > 0:
                writer.writerow([address(i - 3), "again"])
            else:
                writer.writerow([address(i), f"Reader {i}"])
                if i % 50 == 11:
                    existing.append(address(i).lower())
                elif i % 100 == 13:
                    erased.append(address(i).lower())
    return existing, erased


def prepare(url: str, existing: list[str], erased: list[str]) -> None:
    """A fresh schema with ``existing`` as rows (statuses in turn) and ``erased`` as suppression records."""
    from sqlalchemy import text

    from pipeline import service
    from pipeline.audience.suppression import address_hash
    from pipeline.settings import Settings

    cfg = Settings(_env_file=None, environment="test", secret_key=SECRET, database_url=url)  # type: ignore[call-arg]
    now = dt.datetime(2025, 1, 1)
    insert = text(
        "INSERT INTO subscriber (email, status, uid, created_at, updated_at, paused, frequency, weekday, topics, "
        "hard_bounces) VALUES (:email, :status, :uid, :now, :now, false, 'daily', 0, '[]', 0)"
    )
    hashes = text("INSERT INTO suppression (address_hash, reason, created_at) VALUES (:hash, :reason, :now)")
    with service.engine(cfg).begin() as conn:
        conn.execute(insert, [{"email": a, "status": STATUSES[k % 4], "uid": f"old{k:06}", "now": now}
                              for k, a in enumerate(existing)])
        left = [a for k, a in enumerate(existing) if STATUSES[k % 4] in ("unsubscribed", "bounced")]
        conn.execute(hashes, [{"hash": address_hash(a), "reason": "removed" if a in erased else
                               ("bounced" if STATUSES[existing.index(a) % 4] == "bounced" else "unsubscribed"),
                               "now": now} for a in [*erased, *left]])


def run(url: str, csv_path: Path, n: int, existing: list[str], erased: list[str], label: str) -> None:
    from sqlmodel import Session

    from pipeline import service
    from pipeline.audience.subscribers import EXPORT_FIELDS, export_rows, import_rows, read_csv_emails
    from pipeline.settings import Settings

    cfg = Settings(_env_file=None, environment="test", secret_key=SECRET, database_url=url)  # type: ignore[call-arg]
    prepare(url, existing, erased)
    engine = service.engine(cfg)

    start = time.perf_counter()
    rows = read_csv_emails(csv_path)
    with Session(engine) as session:
        report = import_rows(session, rows=rows, confirmed=True)
        session.commit()
    took = time.perf_counter() - start
    print(f"{label}: import of {n} rows: {took:.2f} s, {n / took:,.0f} addresses/s "
          f"(added {report.added}, already {report.already}, kept {report.kept_unsubscribed}, "
          f"invalid {len(report.invalid)})")

    out = csv_path.with_suffix(".out.csv")
    start = time.perf_counter()
    count = 0
    with Session(engine) as session, out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=EXPORT_FIELDS)
        writer.writeheader()
        for row in export_rows(session):
            writer.writerow(row)
            count += 1
    took = time.perf_counter() - start
    print(f"{label}: export of {count} rows: {took:.2f} s, {count / took:,.0f} rows/s")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="rows in the CSV")
    parser.add_argument("--postgres", metavar="URL", help="also on a new database of this PostgreSQL server")
    args = parser.parse_args()

    from pipeline.audience.subscribers import validate_new_address
    from pipeline.errors import SubscriberError

    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        csv_path = Path(tmp) / "list.csv"
        existing, erased = write_csv(csv_path, args.n)
        print(f"{args.n} rows: {len(existing)} already stored, {len(erased)} erased")

        start = time.perf_counter()
        for i in range(args.n):
            try:
                validate_new_address(address(i))
            except SubscriberError:
                pass
        took = time.perf_counter() - start
        print(f"validation alone: {took:.2f} s, {args.n / took:,.0f} addresses/s")

        run(f"sqlite:///{Path(tmp) / 'bench.db'}", csv_path, args.n, existing, erased, "sqlite")
        if args.postgres:
            with fresh_postgres(args.postgres, prefix="papermail_bench") as url:
                run(url, csv_path, args.n, existing, erased, "postgresql")


if __name__ == "__main__":
    main()
