"""Once a person unsubscribes, nothing mails them again without their own fresh confirmation.

The story end to end, with the real site (TestClient over the app), the real ``papermail``
command in processes of its own and the real mail step writing .eml files; then each way
back in on its own: the form, resubscribe, import, add, resend, housekeeping, erasure.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from pipeline import service
from pipeline.audience.subscribers import Suppressed, import_rows, remove_subscribers, store_address
from pipeline.audience.suppression import address_hash
from pipeline.audience.tokens import Purpose, Signer
from pipeline.models import DeliveryStatus, Subscriber, SubscriberStatus, Suppression, SuppressionReason
from pipeline.web import create_app
from tests.support.cli import papermail
from tests.support.sending import DAY, counts, send_all
from tests.support.web import get

HER = "her@example.org"
CROSS_SITE = {"Origin": "https://attacker.example", "Referer": "https://attacker.example/form"}


@pytest.fixture
def cfg(make_settings, tmp_path):
    # The command below runs in tmp_path with the embedded defaults: the same file and outbox.
    return make_settings(database_url=f"sqlite:///{tmp_path / 'var' / 'papermail.db'}",
                         outbox_dir=tmp_path / "var" / "outbox", subscribe_rate_limit="1000/minute")


def cli(tmp_path: Path, cfg, *args: str, check: bool = True):
    return papermail(tmp_path, *args, env={"SECRET_KEY": cfg.secret_key, "BASE_URL": cfg.base_url,
                                          "MAIL_FROM": cfg.mail_from}, check=check)


def confirmation_link(cfg, address: str) -> str:
    raw = (cfg.outbox_dir / "confirmations" / f"{address}.eml").read_bytes()
    text = email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",)).get_content()
    return re.search(r"/confirm/[A-Za-z0-9_.\-]+", text).group(0)


def digests_to(cfg, address: str) -> list[Path]:
    return sorted(cfg.outbox_dir.glob(f"{DAY.isoformat()}*/{address}.eml"))


def suppression(cfg, address: str) -> Suppression | None:
    with Session(service.engine(cfg), expire_on_commit=False) as session:
        return session.exec(select(Suppression).where(Suppression.address_hash == address_hash(address))).first()


def test_unsubscribe_then_a_stranger_resubscribes_then_an_operator_imports_and_nobody_mails_her(cfg, tmp_path):
    with TestClient(create_app(cfg)) as site:
        # She subscribes and confirms from her inbox, then unsubscribes with one click from a digest.
        assert site.post("/subscribe", data={"email": HER}).status_code == 200
        assert site.post(confirmation_link(cfg, HER)).status_code == 200
        assert get(cfg, HER).status is SubscriberStatus.active
        unsubscribe_url = f"/u/{Signer(cfg.secret_key, Purpose.unsubscribe).sign(get(cfg, HER).uid)}"
        assert site.post(unsubscribe_url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
        # A stranger's cross-site form posts her address, and presses "Resubscribe" in an old digest.
        stranger = site.post("/subscribe", data={"email": HER}, headers=CROSS_SITE)
        assert stranger.status_code == 200 and "Check your inbox" in stranger.text
        assert site.post(f"{unsubscribe_url}/resubscribe", headers=CROSS_SITE).status_code == 200
    assert get(cfg, HER).status is SubscriberStatus.unsubscribed

    # The operator imports a list that has her on it, and adds her by hand, and housekeeping runs a month later.
    (tmp_path / "list.csv").write_text(f"email\n{HER}\nnew-reader@example.org\n")
    imported = cli(tmp_path, cfg, "subscribers", "import", "list.csv")
    assert "added 1" in imported.stdout and "left unsubscribed/bounced/erased 1" in imported.stdout
    added = cli(tmp_path, cfg, "subscribers", "add", HER)
    assert f"{HER}: already known (unsubscribed)" in added.stdout
    service.housekeeping(cfg, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=40))
    again = cli(tmp_path, cfg, "subscribers", "import", "list.csv")
    assert "added 0" in again.stdout and "left unsubscribed/bounced/erased 1" in again.stdout

    # The day's digest goes out, and an operator resends it to her: she gets nothing.
    sent = cli(tmp_path, cfg, "run", "--source", "sample", "--date", DAY.isoformat())
    assert "1 sent" in sent.stdout
    resend = cli(tmp_path, cfg, "resend", "--date", DAY.isoformat(), "--to", HER, "--reason", "asked", check=False)
    assert f"{HER}: subscriber is unsubscribed" in resend.stdout + resend.stderr
    assert digests_to(cfg, "new-reader@example.org") and digests_to(cfg, HER) == []
    assert get(cfg, HER).status is SubscriberStatus.unsubscribed
    assert suppression(cfg, HER).reason is SuppressionReason.unsubscribed and suppression(cfg, HER).lifted_at is None

    # Only her own click on the newest confirmation link brings her back.
    with TestClient(create_app(cfg)) as site:
        assert site.post(confirmation_link(cfg, HER)).status_code == 200
    assert get(cfg, HER).status is SubscriberStatus.active
    assert suppression(cfg, HER).lifted_by == "the subscriber's own confirmation"


def test_a_confirmation_link_from_before_the_unsubscribe_confirms_nothing(cfg):
    with TestClient(create_app(cfg)) as site:
        site.post("/subscribe", data={"email": HER})
        first_link = confirmation_link(cfg, HER)
        site.post(first_link)
        uid = get(cfg, HER).uid
        site.post(f"/u/{Signer(cfg.secret_key, Purpose.unsubscribe).sign(uid)}")
        # The first link is still within its week, but it was minted for the first sign-up.
        page = site.get(first_link)
        assert "unsubscribed after this confirmation link was sent" in page.text
        assert "unsubscribed after this confirmation link was sent" in site.post(first_link).text
    assert get(cfg, HER).status is SubscriberStatus.unsubscribed


def test_an_erased_address_leaves_only_a_hash_and_is_never_imported_again(cfg, tmp_path):
    cli(tmp_path, cfg, "subscribers", "add", HER)
    cli(tmp_path, cfg, "run", "--source", "sample", "--date", DAY.isoformat())
    removed = cli(tmp_path, cfg, "subscribers", "remove", HER)
    assert f"{HER}: removed" in removed.stdout
    assert get(cfg, HER) is None
    record = suppression(cfg, HER)
    assert record.reason is SuppressionReason.removed and HER not in record.model_dump_json()

    (tmp_path / "list.csv").write_text(f"{HER}\n")
    imported = cli(tmp_path, cfg, "subscribers", "import", "list.csv", "--pending")
    assert "added 0" in imported.stdout and "left unsubscribed/bounced/erased 1" in imported.stdout
    assert "confirmation emails" not in imported.stdout  # not even a confirmation mail
    refused = cli(tmp_path, cfg, "subscribers", "add", HER, check=False)
    assert refused.returncode == 1 and f"{HER}: not added: {HER} was removed on" in refused.stderr
    assert get(cfg, HER) is None

    # She may come back herself: the form stores her as pending, but an import still cannot activate her.
    with TestClient(create_app(cfg)) as site:
        assert site.post("/subscribe", data={"email": HER}).status_code == 200
        (tmp_path / "list2.csv").write_text(f"{HER}\n")
        cli(tmp_path, cfg, "subscribers", "import", "list2.csv")
        assert get(cfg, HER).status is SubscriberStatus.pending
        site.post(confirmation_link(cfg, HER))
    assert get(cfg, HER).status is SubscriberStatus.active
    assert suppression(cfg, HER).lifted_at is not None


def test_force_consent_brings_back_an_unsubscribed_address_and_is_recorded(cfg, tmp_path):
    cli(tmp_path, cfg, "subscribers", "add", HER, "failing@example.org")
    with Session(service.engine(cfg)) as session:
        from pipeline.audience.bounces import mark_permanent_failure
        from pipeline.audience.subscriptions import unsubscribe

        her = session.exec(select(Subscriber).where(Subscriber.email == HER)).one()
        failing = session.exec(select(Subscriber).where(Subscriber.email == "failing@example.org")).one()
        unsubscribe(session, uid=her.uid, now=dt.datetime.now(dt.UTC))
        for _ in range(cfg.bounce_limit):
            mark_permanent_failure(session, subscriber_id=failing.id, reply="550 5.1.1 no such user",
                                   now=dt.datetime.now(dt.UTC), bounce_limit=cfg.bounce_limit)
        session.commit()
    (tmp_path / "list.csv").write_text(f"{HER}\nfailing@example.org\n")

    both = cli(tmp_path, cfg, "subscribers", "import", "list.csv", "--pending", "--force-consent", "x", check=False)
    assert both.returncode == 2 and "cannot go with --pending" in " ".join(both.stderr.replace("│", " ").split())
    forced = cli(tmp_path, cfg, "subscribers", "import", "list.csv", "--force-consent", "signed form, ref 42")
    assert "made active again on your consent record 1" in forced.stdout
    assert f"{HER}: active again (consent: signed form, ref 42)" in forced.stderr
    assert get(cfg, HER).status is SubscriberStatus.active
    assert get(cfg, "failing@example.org").status is SubscriberStatus.bounced  # consent does not fix a mailbox
    record = suppression(cfg, HER)
    assert (record.lifted_by, record.lifted_note) == ("operator import --force-consent", "signed form, ref 42")
    assert suppression(cfg, "failing@example.org").reason is SuppressionReason.bounced


def test_suppression_is_consulted_by_every_operator_path(make_settings, database_url):
    cfg = make_settings(database_url=database_url)
    now = dt.datetime.now(dt.UTC)
    with Session(service.engine(cfg)) as session:
        store_address(session, email=HER, confirmed=True)
        assert remove_subscribers(session, emails=[HER]) == ([HER], [])
        with pytest.raises(Suppressed):
            store_address(session, email=HER.upper(), confirmed=True)
        report = import_rows(session, rows=[HER, "other@example.org"], confirmed=True)
        assert (report.added, report.kept_unsubscribed, report.to_confirm) == (1, 1, [])
        # Erased twice, or erased after unsubscribing: one record, and "removed" is what it says.
        from pipeline.audience.suppression import suppress

        suppress(session, address=HER, reason=SuppressionReason.unsubscribed, now=now)
        session.commit()
        records = session.exec(select(Suppression).where(Suppression.address_hash == address_hash(HER))).all()
        assert [r.reason for r in records] == [SuppressionReason.removed]


def test_an_address_that_cannot_be_encoded_fails_alone_and_the_batch_goes_on(make_settings, database_url, smtp_server):
    """Rows stored by an earlier version in Unicode: the IDN one goes to its ASCII form, the one with a
    non-ASCII local part is failed with its reason, nothing is uncertain, and the rows after it are sent."""
    handler, url = smtp_server
    cfg = make_settings(database_url=database_url, smtp_url=url, send_batch_size=10, claim_size=2)
    service.ingest(cfg, day=DAY, source="sample")
    with Session(service.engine(cfg)) as session:
        for address in ("a@example.org", "jörg@example.org", "idn@bücher.example", "z@example.org"):
            session.add(Subscriber(email=address, status=SubscriberStatus.active))  # as an older version stored them
        session.commit()
    service.build(cfg, day=DAY)
    issue_id, _ = send_all(cfg)
    assert sorted(r for m in handler.messages for r in m.rcpt) == ["a@example.org", "idn@xn--bcher-kva.example",
                                                                    "z@example.org"]
    assert counts(cfg, issue_id) == {"sent": 3, "failed": 1}
    with Session(service.engine(cfg)) as session:
        jorg = session.exec(select(Subscriber).where(Subscriber.email == "jörg@example.org")).one()
        from pipeline.models import Delivery

        delivery = session.exec(select(Delivery).where(Delivery.subscriber_id == jorg.id)).one()
        assert delivery.status is DeliveryStatus.failed and "SMTPUTF8" in delivery.last_error
        assert jorg.hard_bounces == 0 and jorg.status is SubscriberStatus.active  # not a bounce


def test_housekeeping_command_forgets_the_unconfirmed_and_keeps_the_former(cfg, tmp_path):
    cli(tmp_path, cfg, "subscribers", "add", "--pending", "never@example.org", "former@example.org")
    long_ago = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with Session(service.engine(cfg)) as session:
        for sub in session.exec(select(Subscriber)):
            sub.confirmation_sent_at = sub.created_at = long_ago
            if sub.email == "former@example.org":  # left pending by an earlier version after asking again
                sub.confirmed_at = sub.unsubscribed_at = long_ago
            session.add(sub)
        session.commit()
    done = cli(tmp_path, cfg, "housekeeping")
    assert "forgot 1 unconfirmed address(es), marked 1 former subscriber(s) unsubscribed, 0 failed" in done.stdout
    assert get(cfg, "never@example.org") is None
    assert get(cfg, "former@example.org").status is SubscriberStatus.unsubscribed
