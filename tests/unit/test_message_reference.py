"""The fast path against the slow reference: a subscriber's copy built by substituting bytes into the
issue's template, and its wire form (DKIM-signed or not), read back as a receiver reads it, must equal
the message Python's email package builds from scratch for that subscriber, for hostile inputs."""

from __future__ import annotations

import email
import email.policy
import email.quoprimime
import re
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.compose import slots
from pipeline.compose.message import MessageTemplate, Recipient, dot_stuff, qp_value
from pipeline.delivery.dkim import DkimSigner

SENDER = Address("Trending ML Papers", "digest", "papers.example.org")
DATE = datetime(2025, 3, 22, 7, tzinfo=UTC)
ARCHIVE = "https://papers.example.org/issues/2025-03-21"

# Text from the internet: accents, CJK, emoji, lines starting with ".", a lone "." line, "=" and soft-break
# look-alikes, trailing blanks, bare CR and LF, very long lines.
hostile_line = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=120),
    st.sampled_from([".", "..", ".leading dot", "=3D=\t", "trailing blank   ", "x" * 400, "Über — 模型 🚀",
                     "From the start", "\r", "a\rb", "<script>alert(1)</script>"]),
)
hostile_body = st.lists(hostile_line, min_size=1, max_size=12).map("\n".join)
hostile_subject = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n"), min_size=1,
            max_size=250).filter(str.strip),
    st.sampled_from(["Trending ML Papers — 21 Mar 2025: Über models", "模型" * 60, ".", "=?utf-8?q?x?="]),
)
local_part = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,30}", fullmatch=True).filter(lambda s: ".." not in s)
# Signed tokens hold dots; long enough that a URL wraps, so a wrapped line may begin with one.
token = st.from_regex(r"[A-Za-z0-9_.-]{8,160}", fullmatch=True)


def body_with_slots(body: str) -> str:
    return f"{body}\nUnsubscribe: {slots.UNSUBSCRIBE_URL}\nPreferences: {slots.PREFERENCES_URL}\n"


def build(subject: str, text: str, html: str) -> MessageTemplate:
    return MessageTemplate.build(subject=subject, html=html, text=text, sender=SENDER,
                                 list_id="trending.papers.example.org", list_name="Trending ML Papers",
                                 archive_url=ARCHIVE, date=DATE)


def reference(subject: str, text: str, html: str, r: Recipient) -> EmailMessage:
    """The same subscriber's message, made the slow way: a new EmailMessage, then as_bytes()."""
    def own(body: str) -> str:
        return body.replace(slots.UNSUBSCRIBE_URL, r.unsubscribe_url).replace(slots.PREFERENCES_URL,
                                                                             r.preferences_url)

    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["To"], msg["Subject"] = SENDER, r.address, subject
    msg["Date"] = format_datetime(DATE)
    msg["Message-ID"] = f"<{r.message_id}>"
    msg["List-Id"] = "Trending ML Papers <trending.papers.example.org>"
    msg["List-Unsubscribe"] = f"<{r.unsubscribe_url}>, <mailto:{r.unsubscribe_mailto}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(own(text))
    msg.add_alternative(own(html), subtype="html")
    return parse(msg.as_bytes())


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def unstuff(wire: bytes) -> bytes:
    """What an SMTP server stores of DATA (RFC 5321 §4.5.2), the final "." excluded."""
    return re.sub(rb"(?m)^\.", b"", wire)


def same_message(fast: EmailMessage, slow: EmailMessage) -> None:
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
                 "List-Unsubscribe-Post"):
        assert " ".join(str(fast[name]).split()) == " ".join(str(slow[name]).split()), name
    assert fast.get_content_type() == slow.get_content_type() == "multipart/alternative"
    fast_parts, slow_parts = list(fast.iter_parts()), list(slow.iter_parts())
    assert [p.get_content_type() for p in fast_parts] == [p.get_content_type() for p in slow_parts]
    for f, s in zip(fast_parts, slow_parts):
        # The email package turns a bare CR or LF into a line end, as any receiver does: compare per line. The
        # template ends each part with one more line end than set_content(), which nothing shows.
        assert f.get_content().rstrip("\r\n").splitlines() == s.get_content().rstrip("\r\n").splitlines()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=hostile_subject, text=hostile_body, html=hostile_body, local=local_part, tok=token)
def test_template_copy_equals_the_reference_message(subject, text, html, local, tok):
    text, html = body_with_slots(text), f"<p>{body_with_slots(html)}</p>"
    r = Recipient(address=f"{local}@example.org", message_id=f"20250321.{tok}@papers.example.org",
                  unsubscribe_url=f"https://papers.example.org/u/{tok}",
                  unsubscribe_mailto=f"unsubscribe@papers.example.org?subject=unsubscribe%20{tok}",
                  preferences_url=f"https://papers.example.org/p/{tok}", feedback_url=f"https://papers.example.org/f/{tok}")
    template = build(subject, text, html)
    eml = template.render(r)
    same_message(parse(eml), reference(subject, text, html, r))
    assert all(len(line) <= 998 for line in eml.split(b"\r\n"))  # RFC 5322 §2.1.1
    # On the wire: stuffed once per issue, the server stores exactly the .eml.
    assert unstuff(template.render_wire(r)) == eml


_KEY = ed25519.Ed25519PrivateKey.generate()
_SIGNER = DkimSigner(domain="papers.example.org", selector="s1", private_key=_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
_PUBLIC = _KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _dns(name: bytes, timeout: int = 5) -> bytes:
    import base64

    assert name == b"s1._domainkey.papers.example.org."
    return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(_PUBLIC)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=hostile_subject, text=hostile_body, tok=token)
def test_signed_wire_form_is_the_signed_message_and_verifies(subject, text, tok):
    text = body_with_slots(text)
    r = Recipient(address="ada@example.org", message_id=f"20250321.{tok}@papers.example.org",
                  unsubscribe_url=f"https://papers.example.org/u/{tok}",
                  unsubscribe_mailto=f"unsubscribe@papers.example.org?subject=unsubscribe%20{tok}",
                  preferences_url=f"https://papers.example.org/p/{tok}", feedback_url=f"https://papers.example.org/f/{tok}")
    template = build(subject, text, f"<pre>{text}</pre>")
    # What SMTPMessenger writes: the signature header stuffed on its own, then the pre-stuffed message.
    wire = dot_stuff(_SIGNER.signature(template.render(r))) + template.render_wire(r)
    received = unstuff(wire)
    assert received.endswith(template.render(r))
    assert dkim.verify(received, dnsfunc=_dns)
    same_message(parse(received), reference(subject, text, f"<pre>{text}</pre>", r))


def test_a_wrapped_link_never_starts_a_line_with_a_dot():
    """A signed token holds dots; wrapped at 75 characters one may fall first on a line, where a server would
    strip it as dot-stuffing, and the link would break for that subscriber."""
    url = "https://papers.example.org/u/" + "a" * 46 + "." + "b" * 74 + ".." + "c" * 10
    assert url[75] == "." and url[150] == "."
    encoded = qp_value(url)
    assert not any(line.startswith(b".") for line in encoded.split(b"\r\n"))
    assert email.quoprimime.body_decode(encoded.decode().replace("\r\n", "\n")) == url
