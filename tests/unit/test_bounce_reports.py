"""Reading bounce messages: RFC 3464 reports and the common non-standard formats; reading mailboxes."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.inbound.bounce_reports import EMPTY, BounceReport, parse_bounce
from pipeline.inbound.mail_parser import MAX_DEPTH, TooDeeplyNested
from pipeline.inbound.mailboxes import read_messages
from tests.support.bounces import BOUNCES, DELAYED, EXIM, GMAIL, POSTFIX, sample

# --- parsing the samples ----------------------------------------------------------------------


def test_a_postfix_dsn_for_an_unknown_user_is_a_permanent_failure_with_its_status_and_our_message_id():
    report = parse_bounce(sample(POSTFIX))
    assert report.permanent == {"gone.reader@example.net"}  # Final-Recipient was Gone.Reader@Example.net
    assert report.temporary == frozenset()
    assert report.reason == "5.1.1 Recipient address rejected: User unknown in virtual mailbox table"
    assert report.original_message_id == "20250321.x4Jm2bQv9TzL0aR7cN1pWg@papers.example.org"
    assert report.bounce_id == "20250321070014.4ZJ8Q51mN2z9sWb@mail.papers.example.org"


def test_an_exim_plain_text_bounce_is_read_with_the_smtp_reply_it_quotes():
    report = parse_bounce(sample(EXIM))
    assert report.permanent == {"old.address@example.com"}
    assert report.temporary == frozenset()
    assert report.reason == "5.1.1 Recipient address rejected: User unknown in local recipient table"
    assert report.original_message_id == "20250321.Qm8vT2cXr5LhN0bJk4sYfA@papers.example.org"
    assert report.bounce_id == "E1tvX8h-00031k-0P@relay.example.com"


def test_a_gmail_over_quota_dsn_is_permanent_by_its_5_2_2_status():
    report = parse_bounce(sample(GMAIL))
    assert report.permanent == {"full.inbox@gmail.com"}
    assert report.temporary == frozenset()
    assert report.reason.startswith("5.2.2 The email account that you tried to reach is over quota and inactive.")
    assert "552-5.2.2" not in report.reason  # the continuation-line prefixes are gone
    assert report.original_message_id == "20250321.kP3sW9xZ1qV7mB2nR8tYcQ@papers.example.org"


def test_a_delayed_dsn_is_a_temporary_failure():
    report = parse_bounce(sample(DELAYED))
    assert report.temporary == {"busy.reader@example.org"}
    assert report.permanent == frozenset()
    assert report.reason == "4.2.2 Mailbox full"
    assert report.original_message_id == "20250321.Hn7dK2pL5wQ9xR3vT6yZbA@papers.example.org"


@pytest.mark.parametrize("name", ["not_a_bounce_reply.eml", "not_a_bounce_out_of_office.eml"])
def test_a_reply_or_an_auto_reply_is_not_a_bounce(name):
    report = parse_bounce(sample(name))
    assert report == EMPTY and not report.is_bounce


DSN = """\
From: MAILER-DAEMON@mx.example.org
To: bounces@papers.example.org
Subject: Delivery Status Notification
Message-ID: <dsn-{n}@mx.example.org>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

Delivery report.

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

{blocks}
--b--
"""


def dsn(blocks: str, n: int = 1) -> bytes:
    return DSN.format(blocks=blocks, n=n).encode()


def test_the_status_code_decides_even_when_the_action_is_failed():
    # An MTA that gave up retrying says "failed" with a 4.x.x code: the address itself may be fine.
    raw = dsn("Final-Recipient: rfc822; slow@example.org\nAction: failed\nStatus: 4.4.7\n"
              "Diagnostic-Code: X-Postfix; delivery temporarily suspended: connection timed out\n")
    report = parse_bounce(raw)
    assert report.temporary == {"slow@example.org"} and report.permanent == frozenset()
    assert report.reason == "4.4.7 delivery temporarily suspended: connection timed out"


def test_several_recipients_each_with_their_own_outcome_and_reason():
    raw = dsn(
        "Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n\n"
        "Final-Recipient: rfc822; full@example.org\nAction: delayed\nStatus: 4.2.2\n\n"
        "Final-Recipient: rfc822; fine@example.org\nAction: relayed\nStatus: 2.0.0\n\n"
        "Final-Recipient: rfc822; alias@example.org\nOriginal-Recipient: rfc822; Sent.To@Example.org\n"
        "Action: failed\nStatus: 5.2.1\n"
    )
    report = parse_bounce(raw)
    assert report.permanent == {"gone@example.org", "sent.to@example.org"}  # the address we sent to
    assert report.temporary == {"full@example.org"}
    # No diagnostic: RFC 3463's words for the code.
    assert report.reason_for("gone@example.org") == "5.1.1 bad destination mailbox address"
    assert report.reason_for("full@example.org") == "4.2.2 mailbox full"
    assert report.reason_for("sent.to@example.org") == "5.2.1 mailbox disabled"
    assert "gone@example.org: 5.1.1" in report.reason


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\xff\xfe garbage \x80", b"From: x\n\n", b"Content-Type: multipart/report; boundary=x\n\n--x\n",
     b"Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822;\nAction: failed\n",
     b"Content-Type: multipart/report; boundary=x\n\n--x\nContent-Type: message/delivery-status\n"
     b"Content-Transfer-Encoding: base64\n\n!!!notbase64\n--x--\n"],
)
def test_garbage_gives_an_empty_report(raw):
    assert parse_bounce(raw) == EMPTY


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_no_input_makes_parse_bounce_raise(raw):
    assert isinstance(parse_bounce(raw), BounceReport)


@pytest.mark.parametrize("name", [POSTFIX, EXIM, GMAIL, DELAYED])
def test_truncated_and_mangled_samples_never_raise(name):
    raw = sample(name)
    for cut in range(0, len(raw), 97):
        assert isinstance(parse_bounce(raw[:cut]), BounceReport)
        assert isinstance(parse_bounce(raw[:cut] + b"\xff\x00" + raw[cut + 40:]), BounceReport)



def wrapped(raw: bytes, depth: int, *, kind: bytes = b"multipart") -> bytes:
    """``raw`` as the innermost part of ``depth`` nested multipart/mixed (or message/rfc822) parts."""
    if kind == b"message":
        return b"From: mailer-daemon@mx.example.net\n" + b"Content-Type: message/rfc822\n\n" * depth + raw
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="n%d"\n\n--n%d\n' % (i, i) for i in range(depth))
    closing = b"".join(b"\n--n%d--\n" % i for i in reversed(range(depth)))
    return b"From: mailer-daemon@mx.example.net\nMIME-Version: 1.0\n" + opening + raw + closing


def test_a_report_a_few_levels_down_is_still_read():
    report = parse_bounce(wrapped(sample(POSTFIX), 10))
    assert report.permanent == {"gone.reader@example.net"}
    assert report.original_message_id == "20250321.x4Jm2bQv9TzL0aR7cN1pWg@papers.example.org"


@pytest.mark.parametrize("kind", [b"multipart", b"message"])
def test_a_message_nested_deeper_than_mail_ever_is_refused_before_the_parser_recurses(kind):
    # Refused by the bound while parsing (TooDeeplyNested), not read until Python's recursion
    # limit stopped it (a RecursionError caught as "unreadable": an empty report and a traceback logged).
    with pytest.raises(TooDeeplyNested, match="too deeply nested"):
        parse_bounce(wrapped(sample(POSTFIX), 5000, kind=kind))
    assert parse_bounce(wrapped(sample(POSTFIX), MAX_DEPTH - 10)).permanent == {"gone.reader@example.net"}

# --- reading mailboxes ------------------------------------------------------------------------


def test_an_mbox_yields_each_message():
    reports = [parse_bounce(raw) for raw in read_messages(BOUNCES / "two_bounces.mbox")]
    assert [set(r.permanent) for r in reports] == [{"gone.reader@example.net"}, {"old.address@example.com"}]


def test_a_single_eml_a_folder_of_eml_files_and_a_maildir(tmp_path):
    assert list(read_messages(BOUNCES / EXIM)) == [sample(EXIM)]
    folder = tmp_path / "saved"
    folder.mkdir()
    for name in (POSTFIX, EXIM):
        shutil.copy(BOUNCES / name, folder / name)
    (folder / "notes.txt").write_text("not mail")
    assert sorted(read_messages(folder)) == sorted([sample(POSTFIX), sample(EXIM)])
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1742540414.M1P2.mail").write_bytes(sample(POSTFIX))
    (maildir / "cur" / "1742540463.M2P3.mail:2,S").write_bytes(sample(GMAIL))
    (maildir / "tmp" / "1742540500.M3P4.mail").write_bytes(sample(EXIM))  # still being written: not read
    assert list(read_messages(maildir)) == [sample(POSTFIX), sample(GMAIL)]


def test_taking_new_messages_needs_a_maildir(tmp_path):
    from pipeline.errors import ConfigError
    from pipeline.inbound.mailboxes import take_new

    with pytest.raises(ConfigError, match="is not a Maildir"):
        list(take_new(tmp_path))
