"""An issue built and sent in-process: subscribers, the sample day's issue, every batch, the ledger's counts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import create_engine, text
from sqlmodel import Session

from pipeline import service
from pipeline.audience.subscribers import add_subscriber
from pipeline.delivery.ledger import delivery_counts

DAY = dt.date(2025, 3, 21)  # the day of the sample papers


def subscribe(cfg, emails, *, confirmed=True):
    with Session(service.engine(cfg)) as session:
        for e in emails:
            add_subscriber(session, email=e, confirmed=confirmed)
        session.commit()


def prepare(cfg, n=5, *, pending=()):
    """The sample papers, ``n`` confirmed subscribers (returned), the ``pending`` ones, and DAY's issue built."""
    service.ingest(cfg, day=DAY, source="sample")
    emails = [f"reader{i:03}@example.org" for i in range(n)]
    subscribe(cfg, emails)
    subscribe(cfg, pending, confirmed=False)
    service.build(cfg, day=DAY)
    return emails


def send_all(cfg):
    """Every batch of DAY's issue, one after the other in this process: (issue id, each batch's result)."""
    issue_id, batches = service.start_sending(cfg, day=DAY)
    results = [service.send_range(cfg, issue_id=issue_id, after_id=a, upto_id=b) for a, b in batches]
    service.finish(cfg, issue_id=issue_id)
    return issue_id, results


def counts(cfg, issue_id):
    """The issue's deliveries per status, the statuses no delivery has left out."""
    with Session(service.engine(cfg)) as session:
        return {k: v for k, v in delivery_counts(session, issue_id=issue_id).items() if v}


def ledger_by_address(database_url):
    """Each subscriber's delivery status, read over a connection of its own (the sender may be another process)."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text(
            "SELECT s.email, d.status FROM delivery d JOIN subscriber s ON s.id = d.subscriber_id")).all())
    engine.dispose()
    return rows
