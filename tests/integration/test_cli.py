"""The ``papermail`` command as a newcomer runs it: real processes, embedded defaults."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import pytest

from tests.support.cli import papermail
from tests.support.paths import FIXTURES

DAY = "2025-03-21"


def read_eml(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def test_the_readme_demo_writes_one_valid_message_per_demo_subscriber_and_a_rerun_sends_nothing(tmp_path):
    papermail(tmp_path, "init", "--demo")
    first = papermail(tmp_path, "run", "--source", "sample")
    outbox = tmp_path / "var" / "outbox" / DAY
    files = sorted(p.name for p in outbox.glob("*.eml"))
    assert files == ["ada@example.org.eml", "alan@example.org.eml", "grace@example.org.eml"]
    assert "3 sent" in first.stdout and str(Path("var/outbox") / DAY) in first.stdout
    assert "Training-Free Efficient Video Generation" in (tmp_path / "var" / f"preview-{DAY}.html").read_text()

    msg = read_eml(outbox / "ada@example.org.eml")
    assert msg["To"] == "ada@example.org"
    for header in ("Message-ID", "Date", "From", "Subject", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post"):
        assert msg[header], header
    assert msg["Subject"].startswith("Trending ML Papers — 21 Mar 2025: Training-Free Efficient Video Generation")
    text, html = (p.get_content() for p in msg.iter_parts())
    # The top papers of the sample day, by trend score, with their links.
    assert text.index("Training-Free Efficient Video Generation") < text.index("UbiMoE")
    assert "https://huggingface.co/papers/2505.16864" in text and "https://huggingface.co/papers/2505.16864" in html

    mtimes = {p: p.stat().st_mtime_ns for p in outbox.glob("*.eml")}
    again = papermail(tmp_path, "run", "--source", "sample")
    assert "0 new papers" in again.stdout and "already built" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in outbox.glob("*.eml")} == mtimes  # nothing rewritten
    status = papermail(tmp_path, "status", "--date", DAY)
    assert "finished" in status.stdout and "3 sent" in status.stdout


def test_a_feed_with_broken_records_still_makes_the_issue_and_reports_what_it_skipped(tmp_path):
    papermail(tmp_path, "init")
    papermail(tmp_path, "subscribers", "add", "reader@example.org")
    feed = tmp_path / "feed.json"
    feed.write_bytes((FIXTURES / "hf_page_hostile.json").read_bytes())
    result = papermail(tmp_path, "run", "--date", DAY, "--source", f"file:{feed}")
    assert "skipped 13 malformed record(s)" in result.stderr
    assert "missing" in result.stderr  # each with its reason
    assert "Traceback" not in result.stderr
    msg = read_eml(tmp_path / "var" / "outbox" / DAY / "reader@example.org.eml")
    html = msg.get_body(("html",)).get_content()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "\n" not in msg["Subject"] and "Bcc" not in msg.keys()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ingest", "--date", DAY, "--source", "file:missing.json"), "error: no such file: missing.json"),
        (("ingest", "--source", "gopher"), "error: unknown source 'gopher'"),
        (("build", "--date", "2030-01-01"), "error: no papers listed on 2030-01-01"),
        (("send", "--date", "2030-01-01"), "error: there is no daily issue for 2030-01-01"),
        (("subscribers", "add", "not-an-address"), "error: 'not-an-address' is not a valid email address"),
    ],
)
def test_user_mistakes_end_in_one_line_and_a_nonzero_exit(tmp_path, args, message):
    proc = papermail(tmp_path, *args, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_placeholder_secret_is_refused_outside_development(tmp_path):
    proc = papermail(tmp_path, "init", env={"ENVIRONMENT": "production", "SECRET_KEY": "change-me"}, check=False)
    assert proc.returncode == 78
    assert "SECRET_KEY" in proc.stderr and "Traceback" not in proc.stderr


def test_an_inbound_maildir_that_is_not_one_is_refused_at_start_up_in_one_line(tmp_path):
    (tmp_path / "mail").mkdir()  # a directory, but without cur/, new/ and tmp/
    proc = papermail(tmp_path, "status", env={"INBOUND_MAILDIR": str(tmp_path / "mail")}, check=False)
    assert proc.returncode == 78 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: bad setting INBOUND_MAILDIR: Value error, INBOUND_MAILDIR {tmp_path / 'mail'} is not a Maildir "
        "(it needs cur/, new/ and tmp/)"]


def test_subscribers_import_and_list(tmp_path):
    csv = tmp_path / "people.csv"
    csv.write_text("name,email\nAda,Ada@Example.org\nBad,nope\nAda again,ada@example.org\n")
    papermail(tmp_path, "init")
    imported = papermail(tmp_path, "subscribers", "import", str(csv))
    assert "added 1, already subscribed 1" in imported.stdout and "invalid 1" in imported.stdout
    listed = papermail(tmp_path, "subscribers", "list")
    assert listed.stdout.split("\t")[0] == "ada@example.org"  # normalized, stored once


def test_rank_explain_prints_each_score_as_its_parts(tmp_path):
    papermail(tmp_path, "ingest", "--source", "sample")
    out = papermail(tmp_path, "rank", "--date", DAY, "--explain", "--limit", "3").stdout
    lines = [line for line in out.splitlines() if re.match(r"\s+\d+\s+\d{4}\.\d+", line)]
    assert len(lines) == 3 and "2505.16864" in lines[0]
    assert "× 0.5^(age/36 h)" in out


def test_help_explains_the_commands(tmp_path):
    out = papermail(tmp_path, "--help").stdout
    for command in ("init", "ingest", "rank", "build", "send", "run", "preview", "status", "subscribers"):
        assert command in out
    assert "file:PATH" in papermail(tmp_path, "run", "--help").stdout


def test_preview_writes_html_without_placeholders(tmp_path):
    papermail(tmp_path, "ingest", "--source", "sample")
    papermail(tmp_path, "build", "--date", DAY)
    papermail(tmp_path, "preview", "--date", DAY, "--out", "p.html")
    html = (tmp_path / "p.html").read_text()
    assert "pm-slot" not in html and "/u/preview" in html
    # A plain text file a browser opens as it is: the whole document in UTF-8, not a MIME part
    # (quoted-printable "=3D" and soft line breaks, base64) and not a whole .eml.
    written = (tmp_path / "p.html").read_bytes()
    assert written.startswith(b"<!DOCTYPE html>") and written.rstrip().endswith(b"</html>")
    assert "<title>Trending ML Papers — Friday, 21 March 2025</title>" in written.decode("utf-8")
    assert b"=3D" not in written and b"=\n" not in written


def test_import_pending_sends_confirmations_and_never_revives_unsubscribed(tmp_path):
    papermail(tmp_path, "init")
    papermail(tmp_path, "subscribers", "add", "gone@example.org", "kept@example.org")
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'papermail.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE subscriber SET status = 'unsubscribed' WHERE email = 'gone@example.org'"))
    (tmp_path / "in.csv").write_text("email\nnew@example.org\ngone@example.org\nkept@example.org\n")
    out = papermail(tmp_path, "subscribers", "import", "--pending", "in.csv").stdout
    assert "added 1, already subscribed 1, left unsubscribed/bounced/erased 1" in out
    assert "confirmation emails sent: 1" in out
    mail = read_eml(tmp_path / "var" / "outbox" / "confirmations" / "new@example.org.eml")
    assert mail["Subject"] == "Confirm your subscription to Trending ML Papers"
    assert "/confirm/" in mail.get_body(("plain",)).get_content()
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT email, status FROM subscriber")).all())
    engine.dispose()
    assert rows == {"gone@example.org": "unsubscribed", "kept@example.org": "active", "new@example.org": "pending"}


def test_export_and_remove(tmp_path):
    papermail(tmp_path, "subscribers", "add", "a@example.org", "b@example.org")
    exported = papermail(tmp_path, "subscribers", "export", "--out", "subs.csv")
    rows = (tmp_path / "subs.csv").read_text().splitlines()
    assert rows[0].startswith("email,status,") and len(rows) == 3 and "2 subscriber(s) exported" in exported.stderr
    removed = papermail(tmp_path, "subscribers", "remove", "A@example.org", "ghost@example.org")
    assert "a@example.org: removed" in removed.stdout and "ghost@example.org: not a subscriber" in removed.stderr
    assert papermail(tmp_path, "subscribers", "list").stdout.split("\t")[0] == "b@example.org"
    assert papermail(tmp_path, "subscribers", "remove", "ghost@example.org", check=False).returncode == 1
