"""The List-Unsubscribe mailto: address: a mail client's request, read by `papermail bounces`."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from email.header import Header
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from sqlmodel import Session, select

from pipeline import service
from pipeline.audience.tokens import Purpose, Signer
from pipeline.inbound.handler import unsubscribe_token
from pipeline.models import Subscriber, SubscriberStatus
from tests.support.bounces import returned
from tests.support.sending import prepare, send_all

SECRET = "mailto-test-secret-0123456789abcdef"


@pytest.fixture
def cfg(make_settings, database_url):
    return make_settings(database_url=database_url, secret_key=SECRET)  # no SMTP server: .eml files in the outbox


def digest_to(cfg, address: str) -> email.message.EmailMessage:
    [path] = [p for p in Path(cfg.outbox_dir).rglob("*.eml") if address in p.read_text(errors="replace")]
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def request_from(digest: email.message.EmailMessage, sender: str) -> bytes:
    """What a mail client sends for the header's mailto: URI (RFC 6068: to, subject; RFC 2369)."""
    mailto = next(part.strip(" <>") for part in str(digest["List-Unsubscribe"]).split(",")
                  if part.strip(" <>").startswith("mailto:"))
    parts = urlsplit(mailto)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = unquote(parts.path)
    msg["Subject"] = parse_qs(parts.query)["subject"][0]
    msg["Message-ID"] = f"<request-{abs(hash(mailto))}@mail.example.org>"
    msg.set_content("Sent from my phone")
    return msg.as_bytes()


def run_bounces(cfg, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"BROKER_URL", "SMTP_URL", "OUTBOX_DIR"}}
    env.update({"DATABASE_URL": cfg.database_url, "ENVIRONMENT": "test", "SECRET_KEY": SECRET,
                "MAIL_FROM": cfg.mail_from})
    proc = subprocess.run([sys.executable, "-m", "pipeline", "bounces", *args], env=env, input=stdin,
                          capture_output=True, timeout=120, cwd=Path(cfg.outbox_dir).parent)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode()
    return subprocess.CompletedProcess(proc.args, 0, proc.stdout.decode(), proc.stderr.decode())


def status_of(cfg, address: str) -> SubscriberStatus:
    with Session(service.engine(cfg)) as session:
        return session.exec(select(Subscriber.status).where(Subscriber.email == address)).one()


def test_the_mailto_in_a_digest_unsubscribes_its_reader_and_nobody_else(cfg):
    readers = prepare(cfg, n=3)
    send_all(cfg)
    digest = digest_to(cfg, readers[0])
    assert str(digest["List-Unsubscribe"]).count("mailto:unsubscribe@papers.example.org?subject=unsubscribe%20") == 1
    request = request_from(digest, f"Reader Zero <{readers[0]}>")

    done = run_bounces(cfg, "-", stdin=request)
    assert done.stdout.splitlines()[0] == f"{readers[0]}: unsubscribed by mail"
    assert "0 bounce(s), 1 unsubscribe request(s)" in done.stdout and done.stdout.rstrip().endswith("1 unsubscribed")
    assert [status_of(cfg, r) for r in readers] == [SubscriberStatus.unsubscribed, SubscriberStatus.active,
                                                   SubscriberStatus.active]
    again = run_bounces(cfg, "-", stdin=request)  # the client sends it twice, or the mailbox is read again
    assert again.stdout.splitlines()[0] == f"{readers[0]}: unsubscribe request: already unsubscribed"

    # The request came from someone else's mailbox (a forwarded digest): the token decides whose it is,
    # and the token is all a request can act on.
    forwarded = request_from(digest_to(cfg, readers[1]), "Someone Else <other@example.net>")
    assert run_bounces(cfg, "-", stdin=forwarded).stdout.startswith(f"{readers[1]}: unsubscribed by mail")


def test_a_request_whose_token_was_tampered_with_changes_nothing(cfg):
    readers = prepare(cfg, n=2)
    send_all(cfg)
    honest = request_from(digest_to(cfg, readers[0]), readers[0])
    token = unsubscribe_token(honest)
    assert token is not None
    uid_of_other = Signer(SECRET, Purpose.preferences).sign(token.split(".")[0])  # a valid token, wrong purpose
    other_secret = Signer("another-secret-0123456789abcdefghij", Purpose.unsubscribe).sign(token.split(".")[0])
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), uid_of_other, other_secret, "x.y"):
        out = run_bounces(cfg, "-", stdin=honest.replace(token.encode(), bad.encode())).stdout
        assert out.splitlines()[0] == f"{readers[0]}: unsubscribe request with an invalid token: nothing changed"
    assert status_of(cfg, readers[0]) == SubscriberStatus.active


def test_an_encoded_subject_a_token_in_the_body_and_a_dry_run(cfg):
    readers = prepare(cfg, n=2)
    send_all(cfg)
    token = unsubscribe_token(request_from(digest_to(cfg, readers[0]), readers[0]))
    encoded = (f"From: {readers[0]}\r\nTo: unsubscribe@papers.example.org\r\n"
               f"Subject: {Header(f'Re: unsubscribe {token}', 'utf-8').encode()}\r\n\r\n").encode()
    assert b"=?utf-8?" in encoded  # RFC 2047, as a client writing in UTF-8 may send it
    assert unsubscribe_token(encoded) == token
    in_body = (f"From: {readers[1]}\r\nTo: unsubscribe@papers.example.org\r\nSubject: please\r\n\r\n"
               f"unsubscribe {unsubscribe_token(request_from(digest_to(cfg, readers[1]), readers[1]))}\r\n").encode()
    dry = run_bounces(cfg, "--dry-run", "-", stdin=encoded)
    assert dry.stdout.startswith(f"{readers[0]}: unsubscribed by mail") and "dry run, nothing recorded" in dry.stdout
    assert status_of(cfg, readers[0]) == SubscriberStatus.active
    run_bounces(cfg, "-", stdin=encoded)
    run_bounces(cfg, "-", stdin=in_body)
    assert {status_of(cfg, r) for r in readers} == {SubscriberStatus.unsubscribed}


@pytest.mark.parametrize("raw", [
    b"From: a@example.org\r\nSubject: Re: Trending papers\r\n\r\nGreat issue, thanks!\r\n",
    b"From: a@example.org\r\nSubject: unsubscribe\r\n\r\nplease remove me\r\n",  # no token: nothing to act on
    b"\xff\xfe\x00 not mail",
])
def test_other_mail_is_left_alone(cfg, raw):
    prepare(cfg, n=1)
    out = run_bounces(cfg, "-", stdin=raw).stdout
    assert out.splitlines() == ["1 message(s), 0 bounce(s), 0 unsubscribe request(s): 0 hard bounce(s) counted, "
                                "0 address(es) marked bounced, 0 temporary failure(s), 0 not counted, "
                                "0 already recorded, 0 unsubscribed"]
    assert status_of(cfg, "reader000@example.org") == SubscriberStatus.active


def test_beat_reads_the_inbound_maildir_once_per_message(cfg, make_settings, tmp_path):
    readers = prepare(cfg, n=2)
    send_all(cfg)
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    inbound_cfg = make_settings(database_url=cfg.database_url, secret_key=SECRET, inbound_maildir=maildir)
    bounced = digest_to(cfg, readers[1])["Message-ID"].strip("<>")
    (maildir / "new" / "1.M1P1.mx").write_bytes(request_from(digest_to(cfg, readers[0]), readers[0]))
    (maildir / "new" / "2.M2P1.mx").write_bytes(returned(readers[1], bounced))
    (maildir / "new" / "3.M3P1.mx").write_bytes(b"From: a@example.org\r\nSubject: thanks\r\n\r\nnice\r\n")
    (maildir / "tmp" / "4.M4P1.mx").write_bytes(b"still being delivered")

    assert service.read_inbound(inbound_cfg) == {"unsubscribe": 1, "bounce": 1, "other": 1}
    assert status_of(cfg, readers[0]) == SubscriberStatus.unsubscribed
    with Session(service.engine(cfg)) as session:
        assert session.exec(select(Subscriber.hard_bounces).where(Subscriber.email == readers[1])).one() == 1
    assert sorted(p.name for p in (maildir / "cur").iterdir()) == ["1.M1P1.mx:2,S", "2.M2P1.mx:2,S", "3.M3P1.mx:2,S"]
    assert not any((maildir / "new").iterdir()) and (maildir / "tmp" / "4.M4P1.mx").exists()
    assert service.read_inbound(inbound_cfg) == {}  # nothing new: nothing read again
    assert service.read_inbound(cfg) == {}  # no INBOUND_MAILDIR: nothing to do


def test_the_inbound_schedule_exists_only_with_a_maildir(make_settings, tmp_path):
    from workers.app import make_app

    assert "inbound" not in make_app(make_settings()).conf.beat_schedule
    for sub in ("new", "cur", "tmp"):
        (tmp_path / sub).mkdir()
    entry = make_app(make_settings(inbound_maildir=tmp_path, inbound_every_seconds=60)).conf.beat_schedule["inbound"]
    assert entry["task"] == "papermail.inbound" and entry["schedule"] == 60.0
