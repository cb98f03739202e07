"""How fast papermail builds and sends messages. Prints medians; the machine is shared, so compare ratios.

    python bench/send_bench.py [--subscribers 3000] [--repeat 5] [--postgres URL]

1. building one subscriber's message: EmailMessage + as_bytes() per subscriber vs the issue's
   MessageTemplate (encoded once, per-subscriber bytes substituted);
2. talking SMTP over one reused connection to a fast local sink (a separate process):
   smtplib.sendmail (dot-escapes every message again) vs SMTPMessenger (pre-stuffed once per issue);
3. the whole send path, ledger included: send_batch for N subscribers on SQLite (and PostgreSQL if given).
"""

from __future__ import annotations

import argparse
import datetime as dt
import smtplib
import statistics
import tempfile
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from scale_bench import add_subscribers, fresh_database
from smtp_sink import start_sink
from sqlalchemy import text

from pipeline import service
from pipeline.compose import slots
from pipeline.delivery.batch import send_batch
from pipeline.delivery.messengers import SMTPMessenger
from pipeline.delivery.personalize import RecipientFactory, build_template
from pipeline.models import Issue
from pipeline.settings import Settings

DAY = dt.date(2025, 3, 21)


def settings_for(database_url: str, outbox: Path, smtp_url: str | None = None) -> Settings:
    return Settings(_env_file=None, environment="test", secret_key="bench-" + "x" * 32,  # type: ignore[call-arg]
                    database_url=database_url, outbox_dir=outbox, smtp_url=smtp_url,
                    base_url="https://papers.example.org", send_batch_size=10**9)


def prepare(cfg: Settings, subscribers: int) -> Issue:
    service.ingest(cfg, day=DAY, source="sample")
    engine = service.engine(cfg)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM delivery"))
        conn.execute(text("DELETE FROM subscriber"))
        conn.execute(text("UPDATE issue SET send_started_at = NULL, status = 'built'"))  # send it afresh
    add_subscribers(engine, subscribers)
    issue, _ = service.build(cfg, day=DAY)
    return issue


def per_message_emailmessage(issue: Issue, cfg: Settings, n: int) -> float:
    """The straightforward way: a new EmailMessage per subscriber. Returns seconds per message."""
    ctx = service.send_context(cfg)
    make = RecipientFactory(issue, ctx)
    start = time.perf_counter()
    for i in range(n):
        r = make(f"reader{i:06}@example.org", f"uid{i:06}")
        msg = EmailMessage(policy=SMTP)
        msg["From"], msg["To"], msg["Subject"] = ctx.sender_header, r.address, issue.subject
        msg["Message-ID"] = f"<{r.message_id}>"
        msg["List-Unsubscribe"] = f"<{r.unsubscribe_url}>, <mailto:{r.unsubscribe_mailto}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(issue.text.replace(slots.UNSUBSCRIBE_URL, r.unsubscribe_url)
                        .replace(slots.PREFERENCES_URL, r.preferences_url))
        msg.add_alternative(issue.html.replace(slots.UNSUBSCRIBE_URL, r.unsubscribe_url)
                            .replace(slots.PREFERENCES_URL, r.preferences_url), subtype="html")
        msg.as_bytes()
    return (time.perf_counter() - start) / n


def per_message_template(issue: Issue, cfg: Settings, n: int) -> float:
    ctx = service.send_context(cfg)
    template, make = build_template(issue, ctx), RecipientFactory(issue, ctx)
    start = time.perf_counter()
    for i in range(n):
        template.render_wire(make(f"reader{i:06}@example.org", f"uid{i:06}"))
    return (time.perf_counter() - start) / n


def smtp_smtplib(issue: Issue, cfg: Settings, port: int, n: int) -> float:
    ctx = service.send_context(cfg)
    template, make = build_template(issue, ctx), RecipientFactory(issue, ctx)
    messages = [template.render(make(f"r{i}@example.org", f"uid{i:06}")) for i in range(n)]
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        start = time.perf_counter()
        for i, data in enumerate(messages):
            smtp.sendmail(ctx.envelope_from, [f"r{i}@example.org"], data)
        return (time.perf_counter() - start) / n


def smtp_messenger(issue: Issue, cfg: Settings, port: int, n: int) -> float:
    ctx = service.send_context(cfg)
    template, make = build_template(issue, ctx), RecipientFactory(issue, ctx)
    recipients = [make(f"r{i}@example.org", f"uid{i:06}") for i in range(n)]
    messenger = SMTPMessenger(f"smtp://127.0.0.1:{port}", timeout=10)
    try:
        start = time.perf_counter()
        for r in recipients:
            assert messenger.send(sender=ctx.envelope_from, recipient=r,
                                  wire=messenger.wire_for(template, r)).outcome == "sent"
        return (time.perf_counter() - start) / n
    finally:
        messenger.close()


def full_send(cfg: Settings, subscribers: int) -> float:
    """send_batch over every subscriber, ledger writes included. Returns messages per second."""
    issue = prepare(cfg, subscribers)
    service.start_sending(cfg, day=DAY)
    port = int(cfg.smtp_url.rsplit(":", 1)[1])  # type: ignore[union-attr]
    messenger = SMTPMessenger(f"smtp://127.0.0.1:{port}", timeout=10)
    start = time.perf_counter()
    result = send_batch(service.engine(cfg), issue_id=issue.id, after_id=0, upto_id=10**12,  # type: ignore[arg-type]
                        messenger=messenger, ctx=service.send_context(cfg))
    elapsed = time.perf_counter() - start
    messenger.close()
    assert result.sent == subscribers, result
    return subscribers / elapsed


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", help="also measure the full send on PostgreSQL, in a new database made "
                        "through this URL and dropped afterwards")
    args = parser.parse_args()

    sink, port = start_sink()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = settings_for(f"sqlite:///{tmp}/bench.db", Path(tmp) / "outbox", f"smtp://127.0.0.1:{port}")
            issue = prepare(cfg, 10)
            html_kb, eml_kb = len(issue.html.encode()) / 1024, len(build_template(issue, service.send_context(cfg)).render(
                RecipientFactory(issue, service.send_context(cfg))("a@example.org", "uid"))) / 1024
            print(f"issue: {len(issue.items)} papers, HTML {html_kb:.1f} KB, message {eml_kb:.1f} KB")

            slow = median([per_message_emailmessage(issue, cfg, 200) for _ in range(args.repeat)])
            fast = median([per_message_template(issue, cfg, 5000) for _ in range(args.repeat)])
            print(f"build  EmailMessage per subscriber : {slow * 1e3:7.3f} ms/msg  {1 / slow:9,.0f} msg/s")
            print(f"build  MessageTemplate substitution: {fast * 1e3:7.3f} ms/msg  {1 / fast:9,.0f} msg/s"
                  f"   ({slow / fast:.0f}x faster)")

            lib = median([smtp_smtplib(issue, cfg, port, 1000) for _ in range(args.repeat)])
            own = median([smtp_messenger(issue, cfg, port, 1000) for _ in range(args.repeat)])
            print(f"smtp   smtplib.sendmail, one conn  : {lib * 1e3:7.3f} ms/msg  {1 / lib:9,.0f} msg/s")
            print(f"smtp   SMTPMessenger, one conn     : {own * 1e3:7.3f} ms/msg  {1 / own:9,.0f} msg/s"
                  f"   ({lib / own:.2f}x)")

            rates = [full_send(cfg, args.subscribers) for _ in range(args.repeat)]
            print(f"send   send_batch + ledger, SQLite : {median(rates):9,.0f} msg/s median of {args.repeat} "
                  f"({args.subscribers:,} subscribers, min {min(rates):,.0f}, max {max(rates):,.0f})")
        if args.postgres:
            with tempfile.TemporaryDirectory() as tmp, fresh_database(args.postgres, Path(tmp)) as url:
                cfg = settings_for(url, Path(tmp) / "outbox", f"smtp://127.0.0.1:{port}")
                rates = [full_send(cfg, args.subscribers) for _ in range(args.repeat)]
                service.engine(cfg).dispose()
            print(f"send   send_batch + ledger, Postgres: {median(rates):8,.0f} msg/s median of {args.repeat}")
    finally:
        sink.terminate()


if __name__ == "__main__":
    main()
