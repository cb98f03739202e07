"""Settings validation and the Celery app's configuration."""

import pytest
from pydantic import ValidationError

from pipeline.settings import Settings
from workers.app import make_app


def settings(**values):
    return Settings(_env_file=None, **values)


def test_defaults_need_no_servers():
    s = settings()
    assert s.database_url.startswith("sqlite:///") and s.broker_url is None and s.smtp_url is None
    assert s.digest_size == 10 and s.send_hour == 7


@pytest.mark.parametrize("env", ["production", "test"])
@pytest.mark.parametrize("secret", ["change-me", "development-only-secret", ""])
def test_placeholder_secret_is_refused_outside_development(env, secret):
    with pytest.raises(ValidationError, match="SECRET_KEY is a placeholder"):
        settings(environment=env, secret_key=secret)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("smtp_url", "http://mail.example.org", "SMTP_URL must start with smtp://"),
        ("base_url", "papers.example.org", "BASE_URL must be an absolute http"),
        ("base_url", "javascript:alert(1)", "BASE_URL must be an absolute http"),
        ("mail_from", "Digest <digest@example.org>\r\nBcc: x@example.org", "MAIL_FROM must be an address"),
        ("mail_from", "nobody", "MAIL_FROM must be an address"),
        ("send_hour", 24, "less than or equal to 23"),
        ("digest_size", 0, "greater than or equal to 1"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(field, value, message):
    with pytest.raises(ValidationError, match=message):
        settings(**{field: value})


@pytest.mark.parametrize("url", ["smtp://u:p@mail.example.org:2525", "smtp+starttls://mail:587", "smtps://mail:465"])
def test_smtp_url_schemes(url):
    assert settings(smtp_url=url).smtp_url == url


def test_inbound_maildir_must_be_a_maildir(tmp_path):
    assert settings().inbound_maildir is None
    with pytest.raises(ValidationError, match="INBOUND_MAILDIR .* is not a Maildir"):
        settings(inbound_maildir=tmp_path / "missing")
    for sub in ("new", "cur"):
        (tmp_path / sub).mkdir()
    with pytest.raises(ValidationError, match=r"it needs cur/, new/ and tmp/"):
        settings(inbound_maildir=tmp_path)  # no tmp/, where an MTA writes a message before it is new
    (tmp_path / "tmp").mkdir()
    assert settings(inbound_maildir=tmp_path).inbound_maildir == tmp_path


def test_derived_addresses():
    s = settings(mail_from="Trending ML Papers <digest@papers.example.org>", base_url="https://papers.example.org/")
    assert s.base_url == "https://papers.example.org"
    assert s.from_address.addr_spec == "digest@papers.example.org"
    assert s.unsubscribe_mailbox == "unsubscribe@papers.example.org"


def test_no_broker_runs_tasks_in_process():
    app = make_app(settings())
    assert app.conf.task_always_eager is True


def test_broker_app_is_configured_not_to_lose_tasks():
    app = make_app(settings(broker_url="redis://127.0.0.1:6379/0", send_hour=5))
    conf = app.conf
    assert conf.task_always_eager is False
    assert conf.task_acks_late is True and conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is False  # chosen, not Celery 6's default
    assert conf.broker_transport_options["visibility_timeout"] > 600  # above every retry delay
    daily = conf.beat_schedule["daily-digest"]
    assert daily["task"] == "papermail.run"
    assert daily["schedule"].hour == {5} and daily["schedule"].minute == {0}
