"""Settings: the only module that reads the environment (and ``.env``).

Everything else receives values as arguments; ``get_settings()`` is called only
at the edges (CLI, Celery tasks, web app factory).
"""

from __future__ import annotations

from email.headerregistry import Address
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.secret_strength import GENERATE_HINT, MIN_SECRET_BITS, estimated_bits

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "development-only-secret"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_prefix="")

    environment: Literal["development", "test", "production"] = "development"

    # Where things live. Unset BROKER_URL -> Celery tasks run in-process;
    # unset SMTP_URL -> messages are written as .eml files to OUTBOX_DIR.
    database_url: str = "sqlite:///var/papermail.db"
    broker_url: str | None = None
    broker_visibility_timeout: int = Field(3600, ge=1, description="seconds before Redis hands an unacked task to another worker")
    smtp_url: str | None = None
    outbox_dir: Path = Path("var/outbox")
    smtp_timeout: float = Field(30.0, gt=0)

    # What subscribers see.
    base_url: str = "http://localhost:8000"
    secret_key: str = "development-only-secret"
    mail_from: str = "Trending ML Papers <digest@papermail.localhost>"
    list_name: str = "Trending ML Papers"
    list_id: str = "trending.papermail.localhost"
    send_hour: int = Field(7, ge=0, le=23, description="hour (UTC) of the daily run")
    digest_size: int = Field(10, ge=1, le=50)
    images: Literal["proxied", "remote", "off"] = Field(
        "proxied", description="papers' thumbnails: our stored copy served by the site (no third party learns "
        "who opened the mail), the source's own URL, or none")
    thumbnail_hosts: list[str] = Field(
        ["cdn-thumbnails.huggingface.co"], description="the only hosts thumbnails are fetched from (https)")

    # Trend score (see pipeline/rank.py for the formula).
    rank_upvote_weight: float = Field(1.0, ge=0)
    rank_comment_weight: float = Field(2.0, ge=0)
    rank_star_weight: float = Field(1.0, ge=0)
    rank_half_life_hours: float = Field(36.0, gt=0)
    rank_window_hours: float = Field(24.0, gt=0)
    rank_candidate_days: int = Field(1, ge=1, le=14)

    # Sending.
    send_batch_size: int = Field(1000, ge=1, description="deliveries per batch task (one SMTP connection)")
    claim_size: int = Field(200, ge=1, description="deliveries a batch claims per transaction")
    lease_seconds: int = Field(300, ge=1, description="how long a claim is held before it counts as abandoned")
    ledger_write_every: int = Field(
        100, ge=1, le=10_000,
        description="replies a sender holds before writing them to the ledger in one go (the most a lost "
                    "machine can leave uncertain, plus the one in flight)")
    ledger_write_seconds: float = Field(1.0, gt=0, description="the longest a reply waits for its ledger write")
    journal_dir: Path | None = Field(
        None,
        description="where senders append each reply before the next message, so a killed sender leaves one "
                    "message uncertain, not its whole write window (default: 'journal' beside OUTBOX_DIR)")
    retry_base_seconds: int = Field(300, ge=1, description="first retry delay after a 4xx; doubles each time")
    max_attempts: int = Field(8, ge=1)

    # DKIM signing (both or neither); the signing domain is MAIL_FROM's.
    dkim_selector: str | None = None
    dkim_private_key_file: Path | None = None

    # Faults, pacing and operators.
    bounce_limit: int = Field(2, ge=1, description="hard bounces before an address is marked bounced")
    failure_burst_limit: int = Field(50, ge=1, description="consecutive failed sends that pause an issue")
    send_rate_per_second: float = Field(0, ge=0, description="messages per second across all workers; 0 = no limit")
    send_rate_per_hour: int = Field(0, ge=0, description="messages per hour across all workers; 0 = no limit")
    stale_after_hours: float = Field(12, gt=0, description="a scheduled run this late is skipped, not sent")
    admin_token: str | None = Field(None, description="bearer token for the admin API; unset disables it")
    inbound_maildir: Path | None = Field(
        None, description="a Maildir receiving bounces and unsubscribe@ mail; beat reads its new messages")
    inbound_every_seconds: int = Field(300, ge=10, description="how often beat reads INBOUND_MAILDIR")

    # Subscriptions (the web pages).
    pending_expiry_days: int = Field(7, ge=1, description="unconfirmed addresses are forgotten after this")
    subscribe_rate_limit: str = Field("5/hour", description="subscribe requests per client IP (limits syntax)")
    rate_limit_storage: str = Field("memory://", description="limits storage URI, e.g. redis://host:6379/1")
    trust_proxy_headers: bool = Field(False, description="take the client IP from X-Forwarded-For")

    # The HTTP edge (site and admin API alike).
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="larger request bodies are answered 413 unread")
    admin_auth_failure_limit: str = Field(
        "10/15 minutes", description="wrong admin tokens per client before it gets 429 (limits syntax)")
    openapi_enabled: bool | None = Field(
        None, description="serve /openapi.json; unset: everywhere but production (it lists the admin API)")

    # Sources.
    hf_api_url: str = "https://huggingface.co/api"
    arxiv_api_url: str = "http://export.arxiv.org/api/query"
    arxiv_categories: list[str] = ["cs.LG", "cs.CL", "cs.CV", "cs.AI"]
    http_timeout: float = Field(20.0, gt=0)
    http_retries: int = Field(4, ge=0)
    snapshot_every_hours: float = Field(
        3.0, ge=0, description="beat fetches the current lists this often, so velocity is measured between "
        "real fetches; 0: only the daily run fetches")

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("BASE_URL must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("mail_from")
    @classmethod
    def _mail_from_is_address(cls, value: str) -> str:
        _, addr = parseaddr(value)
        if "@" not in addr or any(c in value for c in "\r\n"):
            raise ValueError("MAIL_FROM must be an address like 'Name <digest@example.org>'")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_scheme(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme not in ("smtp", "smtp+starttls", "smtps"):
            raise ValueError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
        return value or None

    @field_validator("broker_url")
    @classmethod
    def _empty_broker_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("inbound_maildir", mode="before")
    @classmethod
    def _empty_maildir_is_none(cls, value: object) -> object:
        return value or None  # INBOUND_MAILDIR= (empty) means unset, as for BROKER_URL

    @field_validator("inbound_maildir")
    @classmethod
    def _inbound_maildir_is_a_maildir(cls, value: Path | None) -> Path | None:
        # Refused at start-up, rather than by every beat tick that reads it.
        if value is not None and not all((value / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise ValueError(f"INBOUND_MAILDIR {value} is not a Maildir (it needs cur/, new/ and tmp/)")
        return value

    @model_validator(mode="after")
    def _dkim_both_or_neither(self) -> Settings:
        if (self.dkim_selector is None) != (self.dkim_private_key_file is None):
            raise ValueError("set both DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE, or neither")
        return self

    @model_validator(mode="after")
    def _enforce_real_secret(self) -> Settings:
        if self.environment != "development" and self.secret_key in PLACEHOLDER_SECRETS:
            raise ValueError(
                f"SECRET_KEY is a placeholder; set a long random value in {self.environment}"
                " (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_https_and_strong_secrets(self) -> Settings:
        if self.environment != "production":
            return self
        if urlsplit(self.base_url).scheme != "https":
            # RFC 8058 §3.1: the one-click List-Unsubscribe URI must be HTTPS; every link in the mail starts here.
            raise ValueError("BASE_URL must be an https:// URL in production (RFC 8058 one-click unsubscribe)")
        for name, value in (("SECRET_KEY", self.secret_key), ("ADMIN_TOKEN", self.admin_token)):
            if value and (bits := estimated_bits(value)) < MIN_SECRET_BITS:
                raise ValueError(
                    f"{name} is too easy to guess for production (about {bits:.0f} bits of entropy,"
                    f" {MIN_SECRET_BITS} needed); generate one with {GENERATE_HINT}"
                )
        return self

    @property
    def serves_openapi(self) -> bool:
        """Whether the site answers /openapi.json: as set, else everywhere but production."""
        return self.openapi_enabled if self.openapi_enabled is not None else self.environment != "production"

    @property
    def from_address(self) -> Address:
        name, addr = parseaddr(self.mail_from)
        user, domain = addr.rsplit("@", 1)
        return Address(display_name=name, username=user, domain=domain)

    @property
    def mail_domain(self) -> str:
        return self.from_address.domain

    @property
    def unsubscribe_mailbox(self) -> str:
        """Where a mail client's List-Unsubscribe mailto: goes."""
        return f"unsubscribe@{self.mail_domain}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
