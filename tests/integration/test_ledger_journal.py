"""A sender killed after the server took a message but before the ledger heard of it.

Senders write results to the ledger in bulk and journal each reply before the next
message. These tests kill ``papermail send`` (SIGKILL) from inside the SMTP server,
while it accepts a message, so the messages before it are known only to the journal
and that one message is in flight.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.support.cli import CLI_SECRET, papermail
from tests.support.sending import ledger_by_address
from tests.support.smtp import SMTPScript

DAY = "2025-03-21"
N = 20


def _killed_at(tmp_path, database_url, handler, smtp_url, smtp_script, *, kill_at: int, write_every: int):
    """Send until the server is taking message ``kill_at``, SIGKILL the sender then; returns (env, emails)."""
    env = {"DATABASE_URL": database_url, "SMTP_URL": smtp_url, "LEASE_SECONDS": "1", "CLAIM_SIZE": str(N),
           "SEND_BATCH_SIZE": str(N), "LEDGER_WRITE_EVERY": str(write_every), "LEDGER_WRITE_SECONDS": "60"}
    emails = [f"reader{i:02}@example.org" for i in range(N)]
    papermail(tmp_path, "ingest", "--source", "sample", env=env)
    papermail(tmp_path, "subscribers", "add", *emails, env=env)
    papermail(tmp_path, "build", "--date", DAY, env=env)

    base = {k: v for k, v in os.environ.items() if k not in {"BROKER_URL", "OUTBOX_DIR"}}
    base.update(env, SECRET_KEY=CLI_SECRET, ENVIRONMENT="test")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "send", "--date", DAY], cwd=tmp_path, env=base,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill_on_arrival(rcpt: str) -> None:
        if len(handler.messages) == kill_at:
            os.kill(proc.pid, signal.SIGKILL)  # before the 250 leaves: the sender never learns it was taken
            proc.wait()

    smtp_script.on_accept = kill_on_arrival
    assert proc.wait(timeout=60) == -signal.SIGKILL
    smtp_script.on_accept = None
    time.sleep(1.2)  # let the dead sender's lease run out
    return env, emails


@pytest.mark.parametrize("smtp_script", [SMTPScript(pipelining=True)], ids=["pipelining"])
def test_killed_sender_leaves_only_the_message_in_flight_uncertain(tmp_path, database_url, smtp_server,
                                                                  smtp_script):
    handler, smtp_url = smtp_server
    env, emails = _killed_at(tmp_path, database_url, handler, smtp_url, smtp_script, kill_at=6, write_every=100)
    # Five replies came back and were journaled; none had reached the ledger yet.
    assert Counter(ledger_by_address(database_url).values()) == {"sending": N}
    assert list((tmp_path / "var" / "journal").glob("*.jsonl"))

    papermail(tmp_path, "send", "--date", DAY, env=env)  # recovers the lease, folding the journal in

    received = Counter(r for m in handler.messages for r in m.rcpt)
    assert set(received) == set(emails) and max(received.values()) == 1
    rows = ledger_by_address(database_url)
    assert [e for e, s in rows.items() if s == "uncertain"] == [emails[5]]  # taken, but its 250 never arrived
    assert sum(s == "sent" for s in rows.values()) == N - 1
    assert not list((tmp_path / "var" / "journal").glob("*.jsonl"))  # folded, then removed


@pytest.mark.parametrize("smtp_script", [SMTPScript(pipelining=True)], ids=["pipelining"])
def test_without_its_journal_at_most_the_write_window_and_one_become_uncertain(tmp_path, database_url,
                                                                              smtp_server, smtp_script):
    handler, smtp_url = smtp_server
    env, emails = _killed_at(tmp_path, database_url, handler, smtp_url, smtp_script, kill_at=7, write_every=4)
    assert Counter(ledger_by_address(database_url).values()) == {"sent": 4, "sending": N - 4}  # one bulk write of 4
    shutil.rmtree(tmp_path / "var" / "journal")  # as if the sender had been on a machine that is gone

    papermail(tmp_path, "send", "--date", DAY, env=env)

    received = Counter(r for m in handler.messages for r in m.rcpt)
    assert max(received.values()) == 1  # nobody twice, although the ledger lost three replies
    rows = ledger_by_address(database_url)
    uncertain = [e for e, s in rows.items() if s == "uncertain"]
    assert uncertain == emails[4:9]  # the window (4) and the one in flight, in id order
    assert set(emails) - set(received) == set(emails[7:9])  # two of them had not gone out: listed, not lost
    assert {e for e, s in rows.items() if s == "sent"} == set(emails) - set(uncertain)
    status = papermail(tmp_path, "status", "--date", DAY, env=env).stdout
    assert all(address in status for address in uncertain)


def test_an_unwritable_journal_stops_the_send_with_one_line_and_loses_nothing(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    env = {"JOURNAL_DIR": str(blocker / "journal")}
    papermail(tmp_path, "init", "--demo", env=env)
    failed = papermail(tmp_path, "run", "--source", "sample", env=env, check=False)
    assert failed.returncode != 0
    assert "JOURNAL_DIR" in failed.stderr and "Traceback" not in failed.stderr + failed.stdout
    assert not list((tmp_path / "var" / "outbox").glob("*/*.eml"))  # nothing went out unrecorded

    papermail(tmp_path, "send", "--date", DAY)  # the default journal, beside the outbox: all three go out
    assert len(list((tmp_path / "var" / "outbox").glob("*/*.eml"))) == 3
