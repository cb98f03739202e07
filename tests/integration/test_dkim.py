"""Optional DKIM: every message signed after its per-subscriber bytes, covering the unsubscribe headers."""

from __future__ import annotations

import base64
import re
import subprocess

import dkim
import pytest

from pipeline import service
from pipeline.errors import ConfigError
from tests.support.sending import prepare, send_all


@pytest.fixture(scope="module")
def keypair(tmp_path_factory):
    """An RSA key made by openssl, and the TXT record a receiver would look up."""
    folder = tmp_path_factory.mktemp("dkim")
    private = folder / "private.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(private), "2048"], check=True, capture_output=True)
    public_der = subprocess.run(["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
                                check=True, capture_output=True).stdout
    return private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)


def test_each_message_is_signed_and_verifies(make_settings, database_url, smtp_server, keypair):
    handler, url = smtp_server
    private, txt = keypair
    cfg = make_settings(database_url=database_url, smtp_url=url, dkim_selector="pm2025",
                        dkim_private_key_file=private)
    prepare(cfg, n=3)
    send_all(cfg)
    assert len(handler.messages) == 3

    def dns(name, timeout=5):
        assert name == b"pm2025._domainkey.papers.example.org."
        return txt

    for received in handler.messages:
        raw = received.data
        assert dkim.verify(raw, dnsfunc=dns), "signature does not verify"
        header = re.search(rb"DKIM-Signature:(.*?)\r\n(?=\S)", raw, re.S).group(1)
        signed = re.search(rb"h=([^;]+)", re.sub(rb"\s+", b"", header)).group(1).lower().split(b":")
        assert b"list-unsubscribe" in signed and b"list-unsubscribe-post" in signed
        tampered = raw.replace(b"/u/", b"/x/", 1)  # a changed unsubscribe link no longer verifies
        assert not dkim.verify(tampered, dnsfunc=dns)


def test_half_a_dkim_configuration_is_refused(make_settings):
    with pytest.raises(ValueError, match="DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE"):
        make_settings(dkim_selector="s1")


def test_an_unreadable_key_is_a_clear_error(make_settings, tmp_path):
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("nonsense")
    with pytest.raises(ConfigError, match="DKIM private key cannot sign"):
        service.dkim_signer(make_settings(dkim_selector="s1", dkim_private_key_file=bad))
    with pytest.raises(ConfigError, match="cannot read DKIM_PRIVATE_KEY_FILE"):
        service.dkim_signer(make_settings(dkim_selector="s1", dkim_private_key_file=tmp_path / "missing.pem"))
