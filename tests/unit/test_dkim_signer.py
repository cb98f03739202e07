"""DKIM signatures made without dkimpy, checked by dkimpy's verifier: RSA and Ed25519 keys, relaxed/simple."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pipeline.compose import slots
from pipeline.compose.message import MessageTemplate, Recipient
from pipeline.delivery.dkim import DkimSigner
from pipeline.errors import ConfigError

DOMAIN, SELECTOR = "papers.example.org", "pm2025"

PAPER = "<p>a paper, with  two  spaces and a tab\tin it</p>"
HTML = f"""<!DOCTYPE html><html><body><p>Café — naïve ✓ Über</p>
.a line that starts with a dot
<a href="{slots.UNSUBSCRIBE_URL}">Unsubscribe</a> <a href="{slots.PREFERENCES_URL}">Preferences</a>
{PAPER * 1000}
</body></html>"""
TEXT = f"Papers ✓\n.\n..two dots\nUnsubscribe: {slots.UNSUBSCRIBE_URL}\nPreferences: {slots.PREFERENCES_URL}\n"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def pem(key, fmt=serialization.PrivateFormat.PKCS8) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def txt_record(key) -> bytes:
    """The TXT record a receiver finds at SELECTOR._domainkey.DOMAIN for ``key``."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)


def verifies(message: bytes, key) -> bool:
    def dns(name, timeout=5):
        assert name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode()
        return txt_record(key)

    return bool(dkim.verify(message, dnsfunc=dns))


def message(token: str = "tok.en-_1") -> bytes:
    """A whole issue for one subscriber (~55 KB, multipart, QP, folded Subject and List-Unsubscribe)."""
    template = MessageTemplate.build(
        subject="Trending ML Papers — 21 Mar 2025: Über models, and a subject long enough to be folded twice",
        html=HTML, text=TEXT, sender=Address("Trending ML Papers", "digest", DOMAIN),
        list_id=f"trending.{DOMAIN}", list_name="Trending ML Papers",
        archive_url=f"https://{DOMAIN}/issues/2025-03-21", date=datetime(2025, 3, 22, 7, tzinfo=UTC),
    )
    return template.render(Recipient(
        address="ada@example.org", message_id=f"20250321.uid-{token}@{DOMAIN}",
        unsubscribe_url=f"https://{DOMAIN}/u/{token}",
        unsubscribe_mailto=f"unsubscribe@{DOMAIN}?subject=unsubscribe%20{token}",
        preferences_url=f"https://{DOMAIN}/p/{token}",
        feedback_url=f"https://{DOMAIN}/f/{token}",
    ))


def tags(signature: bytes) -> dict[bytes, bytes]:
    value = re.sub(rb"\s+", b"", signature.split(b":", 1)[1])
    return dict(tag.split(b"=", 1) for tag in value.split(b";") if tag)


def signer(private_key: bytes) -> DkimSigner:
    return DkimSigner(domain=DOMAIN, selector=SELECTOR, private_key=private_key)


@pytest.mark.parametrize("kind, fmt, algorithm", [
    ("rsa", "pkcs8", b"rsa-sha256"),
    ("rsa", "pkcs1", b"rsa-sha256"),
    ("ed25519", "pkcs8", b"ed25519-sha256"),
    ("ed25519", "seed", b"ed25519-sha256"),
])
def test_a_whole_issue_verifies(rsa_key, ed25519_key, kind, fmt, algorithm):
    key = rsa_key if kind == "rsa" else ed25519_key
    if fmt == "pkcs8":
        data = pem(key)
    elif fmt == "pkcs1":
        data = pem(key, serialization.PrivateFormat.TraditionalOpenSSL)
    else:  # dkimpy's dknewkey: the base64 of the 32-byte seed
        seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
        data = base64.b64encode(seed) + b"\n"
    raw = message()
    assert len(raw) > 50_000
    signature = signer(data).signature(raw)
    assert signature.startswith(b"DKIM-Signature: ") and signature.endswith(b"\r\n")
    assert all(len(line) <= 78 for line in signature.split(b"\r\n"))
    fields = tags(signature)
    assert fields[b"a"] == algorithm and fields[b"c"] == b"relaxed/simple"
    assert fields[b"d"] == DOMAIN.encode() and fields[b"s"] == SELECTOR.encode() and int(fields[b"t"]) > 0
    assert fields[b"h"].split(b":") == [b"from", b"to", b"subject", b"date", b"message-id", b"list-id",
                                        b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version",
                                        b"content-type"]
    assert verifies(signature + raw, key)
    assert signer(data).sign(raw).startswith(b"DKIM-Signature: ")
    assert verifies(signer(data).sign(raw), key)


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_a_changed_body_or_unsubscribe_header_no_longer_verifies(rsa_key, ed25519_key, kind):
    key = rsa_key if kind == "rsa" else ed25519_key
    raw = message()
    signed = signer(pem(key)).sign(raw)
    split = signed.index(b"\r\n\r\n")
    header, body = signed[:split], signed[split:]
    assert b"/u/tok.en-_1" in body and b"List-Unsubscribe: <https://papers.example.org/u/tok.en-_1>" in header
    assert not verifies(header + body.replace(b"/u/", b"/x/", 1), key)
    assert not verifies(header + body.replace(b"Caf=C3=A9", b"Cafe", 1), key)
    assert not verifies(header.replace(b"/u/tok.en-_1", b"/u/other", 1) + body, key)
    assert not verifies(header.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                                       b"List-Unsubscribe-Post: nothing", 1) + body, key)
    other = message("someone-else")  # one subscriber's signature is not another's
    assert not verifies(signed[:signed.index(b"\r\nFrom: ") + 2] + other, key)


@pytest.mark.parametrize("body", [b"", b"\r\n", b"\r\n\r\n\r\n", b"one line", b"one line\r\n",
                                  b"trailing empty lines\r\n\r\n\r\n", b" spaced  \t \r\n\r\n x \r\n"])
def test_body_canonicalization_is_simple(ed25519_key, body):
    raw = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\n\r\n" + body
    assert verifies(signer(pem(ed25519_key)).sign(raw), ed25519_key)


def test_header_fields_are_canonicalized_as_relaxed(rsa_key):
    raw = (b"FROM:   a@example.org \t\r\n"
           b"To: first@example.org\r\n"
           b"subject:\ta  subject\r\n\t folded \t\r\n  twice  \r\n"
           b"X-Not-Signed: anything\r\n"
           b"To:  second@example.org\r\n"
           b"\r\n"
           b"body\r\n")
    signature = signer(pem(rsa_key)).signature(raw)
    assert tags(signature)[b"h"] == b"from:to:subject"  # only the fields present, To once: the last one
    assert verifies(signature + raw, rsa_key)
    assert not verifies(signature + raw.replace(b"second@", b"third@"), rsa_key)
    assert verifies(signature + raw.replace(b"a  subject", b"a subject").replace(b"first@", b"other@"), rsa_key)


def test_a_confirmation_mail_as_the_email_package_writes_it_verifies(rsa_key):
    msg = EmailMessage(policy=SMTP)
    msg["From"], msg["To"], msg["Subject"] = f"digest@{DOMAIN}", "ada@example.org", "Bitte bestätigen"
    msg.set_content("Bestätigen Sie Ihr Abonnement:\nhttps://papers.example.org/c/abc\n")
    msg.add_alternative("<p>Bestätigen</p>", subtype="html")
    assert verifies(signer(pem(rsa_key)).sign(msg.as_bytes()), rsa_key)


def test_a_message_without_from_is_refused(ed25519_key):
    with pytest.raises(ValueError, match="From"):
        signer(pem(ed25519_key)).signature(b"To: b@example.org\r\n\r\nbody\r\n")


@pytest.mark.parametrize("data", [
    b"nonsense",
    b"-----BEGIN PRIVATE KEY-----\nbm9uc2Vuc2U=\n-----END PRIVATE KEY-----\n",
    base64.b64encode(b"\x01" * 31),
    pem(ec.generate_private_key(ec.SECP256R1())),
    ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")),
    b"",
], ids=["text", "bad-pem", "short-seed", "ec-key", "encrypted", "empty"])
def test_an_unusable_key_is_a_config_error_at_construction(data):
    with pytest.raises(ConfigError, match="^DKIM private key cannot sign: ") as caught:
        signer(data)
    assert "\n" not in str(caught.value)


def test_a_public_key_is_not_a_private_key(rsa_key):
    public = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ConfigError, match="DKIM private key cannot sign"):
        signer(public)
