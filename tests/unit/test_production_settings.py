"""Production refuses guessable secrets and plain-http links; the CLI says so in one line."""

from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError

from pipeline.cli import base as cli
from pipeline.errors import ConfigError
from pipeline.secret_strength import MIN_SECRET_BITS, estimated_bits
from pipeline.settings import Settings, get_settings

STRONG = secrets.token_urlsafe(32)


def production(**values: object) -> Settings:
    base: dict[str, object] = {"environment": "production", "secret_key": STRONG,
                               "base_url": "https://papers.example.org"}
    return Settings(_env_file=None, **{**base, **values})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["secret_key", "admin_token"])
@pytest.mark.parametrize("value", [
    "x", "a", "a" * 64, "ab" * 40, "0123456789abcdef" * 4,  # short, or of low variety however long
    # 248 bits, just short of 32 bytes; fixed ids, as xdist needs the same names from every worker
    pytest.param(secrets.token_hex(31), id="token_hex(31)"),
    pytest.param(secrets.token_urlsafe(31), id="token_urlsafe(31)"),
    "correct-horse-battery",
])
def test_a_guessable_secret_or_admin_token_is_refused_in_production(field, value):
    with pytest.raises(ValidationError) as info:
        production(**{field: value})
    message = str(info.value)
    assert f"{field.upper()} is too easy to guess" in message and f"{MIN_SECRET_BITS} needed" in message
    assert "secrets.token_urlsafe(32)" in message  # how to make a good one


@pytest.mark.parametrize("make", [lambda: secrets.token_urlsafe(32), lambda: secrets.token_hex(32)],
                         ids=["token_urlsafe(32)", "token_hex(32)"])
def test_32_random_bytes_pass_for_both(make):
    for _ in range(200):
        secret, token = make(), make()
        cfg = production(secret_key=secret, admin_token=token)
        assert cfg.secret_key == secret and cfg.admin_token == token


def test_the_estimate_follows_the_alphabet():
    assert estimated_bits(secrets.token_hex(32)) == 256  # 64 hex digits × 4 bits
    assert estimated_bits(secrets.token_urlsafe(32)) == 43 * 6  # base64url (RFC 4648 §5)
    assert estimated_bits("9" * 80) == 0  # one repeated character says nothing, whatever the length


def test_no_admin_token_is_allowed_in_production():
    assert production().admin_token is None


def test_outside_production_a_short_secret_still_works():
    assert Settings(_env_file=None, environment="test", secret_key="test-secret-0123456789").secret_key


@pytest.mark.parametrize("url", ["http://papers.example.org", "http://localhost:8000"])
def test_an_http_base_url_is_refused_in_production(url):
    with pytest.raises(ValidationError, match="BASE_URL must be an https:// URL in production"):
        production(base_url=url)


def test_http_still_works_for_development():
    assert Settings(_env_file=None, base_url="http://localhost:8000").base_url == "http://localhost:8000"


@pytest.mark.parametrize(("env", "words"), [
    ({"SECRET_KEY": "x"}, "SECRET_KEY is too easy to guess"),
    ({"ADMIN_TOKEN": "a"}, "ADMIN_TOKEN is too easy to guess"),
    ({"BASE_URL": "http://papers.example.org"}, "BASE_URL must be an https:// URL"),
])
def test_the_cli_reports_it_in_one_line(monkeypatch, tmp_path, env, words):
    monkeypatch.chdir(tmp_path)  # no .env here
    for name, value in {"ENVIRONMENT": "production", "SECRET_KEY": STRONG, "BASE_URL": "https://papers.example.org",
                        **env}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError) as info:
            cli.settings()
    finally:
        get_settings.cache_clear()
    message = str(info.value)
    assert words in message and "\n" not in message
