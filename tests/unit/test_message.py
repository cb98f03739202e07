"""The message encoded once per issue, substituted per subscriber."""

import email
import email.policy
import re
from datetime import UTC, datetime
from email.headerregistry import Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.compose import slots
from pipeline.compose.message import MessageTemplate, Recipient, qp_value
from pipeline.errors import RenderError

HTML = f"""<!DOCTYPE html><html><body><p>Café — naïve ✓</p>
.a line that starts with a dot
<a href="{slots.UNSUBSCRIBE_URL}">Unsubscribe</a> <a href="{slots.PREFERENCES_URL}">Preferences</a>
{"x" * 300}
</body></html>"""
TEXT = f"Papers\n.\nUnsubscribe: {slots.UNSUBSCRIBE_URL}\nPreferences: {slots.PREFERENCES_URL}\n"


def template(subject: str = "Trending ML Papers — 21 Mar 2025: Über models") -> MessageTemplate:
    return MessageTemplate.build(
        subject=subject, html=HTML, text=TEXT, sender=Address("Trending ML Papers", "digest", "papers.example.org"),
        list_id="trending.papers.example.org", list_name="Trending ML Papers",
        archive_url="https://papers.example.org/issues/2025-03-21",
        date=datetime(2025, 3, 22, 7, tzinfo=UTC),
    )


def recipient(address: str = "ada@example.org", token: str = "tok.en-_1") -> Recipient:
    return Recipient(
        address=address,
        message_id=f"20250321.uid-{token}@papers.example.org",
        unsubscribe_url=f"https://papers.example.org/u/{token}",
        unsubscribe_mailto=f"unsubscribe@papers.example.org?subject=unsubscribe%20{token}",
        preferences_url=f"https://papers.example.org/p/{token}",
        feedback_url=f"https://papers.example.org/f/{token}",
    )


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_headers_required_by_rfc_5322_and_8058():
    msg = parse(template().render(recipient()))
    assert msg["To"] == "ada@example.org"
    assert msg["From"] == "Trending ML Papers <digest@papers.example.org>"
    assert msg["Subject"] == "Trending ML Papers — 21 Mar 2025: Über models"
    assert msg["Message-ID"] == "<20250321.uid-tok.en-_1@papers.example.org>"
    assert msg["Date"] == "Sat, 22 Mar 2025 07:00:00 +0000"
    assert msg["List-Id"] == "Trending ML Papers <trending.papers.example.org>"
    assert msg["List-Unsubscribe"] == (
        "<https://papers.example.org/u/tok.en-_1>, "
        "<mailto:unsubscribe@papers.example.org?subject=unsubscribe%20tok.en-_1>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_multipart_alternative_text_first_html_last_and_links_substituted():
    msg = parse(template().render(recipient(token="abc")))
    assert msg.get_content_type() == "multipart/alternative"
    text_part, html_part = list(msg.iter_parts())
    assert text_part.get_content_type() == "text/plain" and html_part.get_content_type() == "text/html"
    text, html = text_part.get_content(), html_part.get_content()
    assert "Unsubscribe: https://papers.example.org/u/abc" in text
    assert 'href="https://papers.example.org/u/abc"' in html
    assert 'href="https://papers.example.org/p/abc"' in html
    assert "Café — naïve ✓" in html
    assert "pm-slot" not in text + html


def test_crlf_line_ends_and_line_lengths():
    raw = template().render(recipient(token="t" * 300))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))  # quoted-printable limit


def test_each_subscriber_gets_only_their_own_values():
    tpl = template()
    a, b = tpl.render(recipient("ada@example.org", "AAA")), tpl.render(recipient("bob@example.org", "BBB"))
    assert b"BBB" not in a and b"bob@" not in a
    assert a.replace(b"AAA", b"BBB").replace(b"ada@", b"bob@") == b


def test_wire_form_is_dot_stuffed_and_decodes_to_the_same_message():
    tpl = template()
    eml, wire = tpl.render(recipient()), tpl.render_wire(recipient())
    assert re.search(rb"\r\n\.[^.]", eml)  # a line starting with a dot exists
    assert not re.search(rb"\r\n\.[^.]", wire)
    assert wire.replace(b"\r\n..", b"\r\n.") == eml
    assert wire.endswith(b"\r\n")


@pytest.mark.parametrize("subject", ["Bad\r\nBcc: victim@example.org", "x\nDKIM-Signature: y"])
def test_header_values_with_line_breaks_are_refused(subject):
    with pytest.raises(RenderError):
        template(subject=subject)


@pytest.mark.parametrize("address", ["ada@example.org\r\nBcc: x@example.org", "ada@exämple.org"])
def test_per_subscriber_values_cannot_inject_headers(address):
    with pytest.raises(RenderError, match="unsafe per-subscriber value"):
        template().render(recipient(address=address))


def test_every_slot_is_present_once_or_more():
    counts = template().slot_counts()
    assert counts[slots.RECIPIENT] == 1 and counts[slots.MESSAGE_ID] == 1
    assert counts[slots.UNSUBSCRIBE_URL] == 3  # header, text, html
    assert counts[slots.PREFERENCES_URL] == 2


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=0, max_size=400))
def test_qp_values_round_trip(value):
    import quopri

    encoded = qp_value(value)
    assert all(len(line) <= 76 for line in encoded.split(b"=\r\n"))
    assert quopri.decodestring(encoded.replace(b"\r\n", b"\n")).decode() == value
