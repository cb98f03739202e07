"""``import_rows`` in chunks gives what ``store_address`` gives row after row: the same report, the same table."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from pipeline import service
from pipeline.audience.subscribers import ImportReport, Suppressed, import_rows, store_address
from pipeline.audience.suppression import address_hash, suppress
from pipeline.errors import SubscriberError
from pipeline.models import Subscriber, SubscriberStatus, Suppression, SuppressionReason

NOW = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
STATES = ("pending", "active", "unsubscribed", "bounced", "erased", "pending-erased")


def address(i: int) -> str:
    return f"Reader{i:05}@Example.org"


def mixed_rows(n: int) -> list[str]:
    """``n`` cells: new addresses, repeats (in other case, across chunks too), invalid ones, blanks,
    and every 7th one known beforehand (see ``prepare``)."""
    rows = []
    for i in range(n):
        if i % 97 == 5:
            rows.append(f"not an address {i}")
        elif i % 211 == 9:
            rows.append("  ")
        elif i % 31 == 4 and i > 500:
            rows.append(address(i - 500).upper())  # a repeat, in another chunk
        elif i % 13 == 2 and i > 0:
            rows.append(address(i - 1))  # a repeat, next to the first
        else:
            rows.append(address(i))
    return rows


def prepare(session: Session, n: int) -> None:
    """Every 7th address already there, in turn pending, active, unsubscribed, bounced, erased (only the
    suppression hash left), and pending again after an unsubscribe (a stranger entered it in the form)."""
    for k, i in enumerate(range(0, n, 7)):
        state, email = STATES[k % len(STATES)], address(i).lower()
        if state != "erased":
            status = SubscriberStatus.active if state == "active" else SubscriberStatus(state.split("-")[0])
            session.add(Subscriber(email=email, status=status, created_at=NOW, updated_at=NOW))
        reason = {"unsubscribed": "unsubscribed", "bounced": "bounced", "erased": "removed",
                  "pending-erased": "unsubscribed"}.get(state)
        if reason is not None:
            suppress(session, address=email, reason=SuppressionReason(reason), now=NOW)
    session.commit()


def one_by_one(session: Session, rows: list[str], *, confirmed: bool,
               force_consent: str | None) -> tuple[ImportReport, list[str]]:
    """What an import is: ``store_address`` for each row, in order. Also the addresses owed a confirmation."""
    report, to_confirm = ImportReport(), []
    for raw in rows:
        if not raw.strip():
            continue
        try:
            sub, outcome = store_address(session, email=raw, confirmed=confirmed, force_consent=force_consent)
        except Suppressed:
            report.kept_unsubscribed += 1
            continue
        except SubscriberError as exc:
            report.invalid.append(str(exc))
            continue
        if outcome == "added":
            report.added += 1
            if not confirmed:
                sub.confirmation_sent_at = NOW  # as the import marks them
                to_confirm.append(sub.email)
        elif outcome == "forced":
            report.forced.append(sub.email)
        elif outcome == "kept":
            report.kept_unsubscribed += 1
        else:
            report.already += 1
    session.commit()
    return report, to_confirm


def table(session: Session) -> dict[str, tuple[str, bool, bool, bool]]:
    return {s.email: (s.status.value, s.confirmed_at is not None, s.confirmation_sent_at is not None,
                      s.unsubscribed_at is not None) for s in session.exec(select(Subscriber))}


def lifts(session: Session) -> dict[str, tuple[str, str | None, str | None]]:
    return {r.address_hash: (r.reason.value, r.lifted_by, r.lifted_note) for r in session.exec(select(Suppression))}


@pytest.fixture
def two_databases(make_settings, database_url, tmp_path: Path):
    """The database under test (bulk) and a SQLite one of the same start (row by row)."""
    bulk = service.engine(make_settings(database_url=database_url))
    reference = service.engine(make_settings(database_url=f"sqlite:///{tmp_path / 'reference.db'}"))
    return bulk, reference


N = 5000


def both_ways(two_databases, rows: list[str], *, confirmed: bool, force_consent: str | None = None):
    """The same import row by row (the reference) and in bulk, each on a fresh copy of the same list:
    (reference report, its ids to confirm, its table, its lifts), (bulk report, its ids to confirm by
    address order, its table, its lifts, the lifted suppressions)."""
    bulk, reference = two_databases
    with Session(reference) as session:
        prepare(session, N)
        expected, to_confirm = one_by_one(session, rows, confirmed=confirmed, force_consent=force_consent)
        want = (expected, to_confirm, table(session), lifts(session))
    with Session(bulk) as session:
        prepare(session, N)
        report = import_rows(session, rows=rows, confirmed=confirmed, force_consent=force_consent, chunk_size=700)
        ids = dict(session.execute(select(Subscriber.id, Subscriber.email)).all())
        lifted = session.exec(select(Suppression).where(col(Suppression.lifted_at).is_not(None))).all()
        got = (report, [ids[i] for i in report.to_confirm], table(session), lifts(session), lifted)
    return want, got


@pytest.mark.parametrize("confirmed", [True, False], ids=["confirmed", "pending"])
def test_a_bulk_import_gives_the_report_and_the_table_of_a_row_by_row_one(two_databases, confirmed):
    (expected, to_confirm, expected_table, expected_lifts), (report, confirming, got_table, got_lifts, _) = \
        both_ways(two_databases, mixed_rows(N), confirmed=confirmed)
    assert (report.added, report.already, report.kept_unsubscribed, report.invalid, report.forced) == (
        expected.added, expected.already, expected.kept_unsubscribed, expected.invalid, expected.forced)
    assert confirming == to_confirm
    assert got_table == expected_table and got_lifts == expected_lifts
    assert expected.added and expected.already and expected.kept_unsubscribed and expected.invalid
    assert bool(to_confirm) is not confirmed


def test_a_forced_bulk_import_records_each_lift_as_the_row_by_row_one(two_databases):
    (expected, _, expected_table, expected_lifts), (report, _, got_table, got_lifts, lifted) = \
        both_ways(two_databases, mixed_rows(N), confirmed=True, force_consent="signed forms, box 3")
    assert report == expected
    assert got_table == expected_table and got_lifts == expected_lifts
    assert report.forced and len(lifted) == len(report.forced)
    assert {r.lifted_by for r in lifted} == {"operator import --force-consent"}
    # Bounced addresses stay bounced, even with a consent record.
    bounced = [address(i).lower() for k, i in enumerate(range(0, N, 7)) if STATES[k % len(STATES)] == "bounced"]
    assert all(expected_table[a][0] == "bounced" for a in bounced)
    assert all(h in expected_lifts and expected_lifts[h][1] is None for h in map(address_hash, bounced))
