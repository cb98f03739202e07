"""The next message's envelope sent with this message's content (RFC 2920), against a real server (aiosmtpd)."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from pipeline import service
from pipeline.delivery.messengers import SMTPMessenger
from pipeline.delivery.personalize import RecipientFactory, build_template
from tests.support.sending import DAY, prepare
from tests.support.smtp import SMTPScript


@pytest.fixture
def copies(make_settings, database_url, smtp_server):
    """(messenger, the envelope sender, the issue's template, a Recipient per address) on the test server."""
    _, url = smtp_server
    cfg = make_settings(database_url=database_url, smtp_url=url)
    emails = prepare(cfg, n=4)
    with Session(service.engine(cfg)) as session:
        issue = service.issue_for(session, DAY)
        ctx = service.send_context(cfg)
        template, make = build_template(issue, ctx), RecipientFactory(issue, ctx)
        recipients = [make(e, f"uid-{i:08}") for i, e in enumerate(emails)]
    messenger = SMTPMessenger(url, timeout=10)
    yield messenger, ctx.envelope_from, template, recipients
    messenger.close()


PIPELINING = [SMTPScript(pipelining=True)]


def send(messenger, sender, template, recipient, **options):
    return messenger.send(sender=sender, recipient=recipient, wire=messenger.wire_for(template, recipient), **options)


@pytest.mark.parametrize("smtp_script", PIPELINING, ids=["pipelining"])
def test_each_message_carries_the_next_envelope_and_all_arrive_whole(copies, smtp_server):
    handler, _ = smtp_server
    messenger, sender, template, recipients = copies
    for i, r in enumerate(recipients):
        following = recipients[i + 1].address if i + 1 < len(recipients) else None
        assert send(messenger, sender, template, r, next_rcpt=following).outcome == "sent"
    assert [m.rcpt for m in handler.messages] == [[r.address] for r in recipients]
    assert [m.data for m in handler.messages] == [template.render(r) for r in recipients]
    assert handler.connections == 1


@pytest.mark.parametrize("smtp_script", PIPELINING, ids=["pipelining"])
def test_an_envelope_sent_ahead_for_someone_not_sent_after_all_delivers_nothing_to_them(copies, smtp_server):
    handler, _ = smtp_server
    messenger, sender, template, (first, skipped, third, _) = copies
    send(messenger, sender, template, first, next_rcpt=skipped.address)
    # The next call is for someone else (the one announced was skipped): the open transaction is abandoned.
    assert send(messenger, sender, template, third).outcome == "sent"
    send(messenger, sender, template, first, next_rcpt=skipped.address)
    messenger.close()  # and closing in the middle of one sends no QUIT into its content
    assert [m.rcpt for m in handler.messages] == [[first.address], [third.address], [first.address]]
    assert all(m.data == template.render(r) for m, r in zip(handler.messages, (first, third, first)))


@pytest.mark.parametrize("smtp_script", [SMTPScript(pipelining=True, rcpt_replies={
    "reader001@example.org": "550 5.1.1 no such user"})], ids=["pipelining"])
def test_a_refusal_of_the_envelope_sent_ahead_is_that_recipients_result(copies, smtp_server):
    handler, _ = smtp_server
    messenger, sender, template, (first, refused, third, _) = copies
    sent = [send(messenger, sender, template, r, next_rcpt=n)
            for r, n in ((first, refused.address), (refused, third.address), (third, None))]
    assert [s.outcome for s in sent] == ["sent", "permanent", "sent"]
    assert sent[1].reply.startswith("550 5.1.1")
    assert [m.rcpt for m in handler.messages] == [[first.address], [third.address]]


@pytest.mark.parametrize("smtp_script", [SMTPScript(pipelining=False), SMTPScript(pipelining=True)],
                         ids=["no-pipelining", "pipelining"])
def test_an_envelope_goes_ahead_only_to_a_server_that_offers_pipelining(copies, smtp_server, smtp_script):
    handler, _ = smtp_server
    messenger, sender, template, (first, announced, other, _) = copies
    send(messenger, sender, template, first, next_rcpt=announced.address)
    send(messenger, sender, template, other)  # not the one announced
    assert [m.rcpt for m in handler.messages] == [[first.address], [other.address]]
    # Sent ahead, the announced transaction had to be abandoned with its connection; without PIPELINING
    # nothing was sent ahead, and the one connection carries on.
    assert handler.connections == (2 if smtp_script.pipelining else 1)
