"""docker-compose.yml read as data: each service's command, settings and health wiring point at real things.

(The file is not run here; this catches the typo in a setting's name or a queue left out.)
"""

from __future__ import annotations

import re
import secrets
import shlex

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from pipeline.cli import app as cli_app
from pipeline.settings import Settings
from tests.support.paths import ROOT
from workers.app import app as celery_app

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OURS = ("web", "worker", "beat", "cli")


def test_every_service_is_there_and_restarts():
    assert set(SERVICES) == {"postgres", "redis", "mailpit", "web", "worker", "beat", "cli"}
    for name, service in SERVICES.items():
        expected = "no" if name == "cli" else "unless-stopped"
        assert service.get("restart") == expected, name
    assert SERVICES["cli"]["profiles"] == ["cli"]  # a one-off container, never started by `up`


@pytest.mark.parametrize("name", ["postgres", "redis", "mailpit", "web", "worker"])
def test_health_is_checked(name):
    assert SERVICES[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")


def test_our_services_wait_for_healthy_dependencies_and_use_real_settings():
    fields = {name.upper() for name in Settings.model_fields}
    for name in OURS:
        service = SERVICES[name]
        assert service["depends_on"] == {dep: {"condition": "service_healthy"} for dep in ("postgres", "redis",
                                                                                            "mailpit")}
        assert set(service["environment"]) <= fields, set(service["environment"]) - fields
        assert service["environment"]["ENVIRONMENT"] == "${ENVIRONMENT:-production}"  # production unless told
        assert service["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?")  # no default secret
        # No default address: production refuses http://, and a public https:// one cannot be guessed.
        assert service["environment"]["BASE_URL"].startswith("${BASE_URL:?")


def test_the_worker_listens_on_every_queue_tasks_are_sent_to():
    command = SERVICES["worker"]["command"]
    queues = set(command[command.index("-Q") + 1].split(","))
    routed = {route["queue"] for route in celery_app.conf.task_routes.values()}
    assert queues == routed | {celery_app.conf.task_default_queue}
    assert command[:4] == ["celery", "-A", "workers", "worker"] and SERVICES["beat"]["command"][3] == "beat"


def test_the_web_command_and_the_cli_entrypoint_exist():
    command = SERVICES["web"]["command"]
    assert command[:2] == ["papermail", "serve"]
    help_text = CliRunner().invoke(cli_app, ["serve", "--help"]).output
    assert all(option in help_text for option in command[2:] if option.startswith("--"))
    assert "8000" in shlex.join(SERVICES["web"]["healthcheck"]["test"]) and "/healthz" in str(SERVICES["web"])
    assert SERVICES["cli"]["entrypoint"] == ["papermail"]
    assert 'papermail = "pipeline.cli:main"' in (ROOT / "pyproject.toml").read_text()


def test_redis_keeps_its_queue_across_restarts():
    assert "--appendonly" in SERVICES["redis"]["command"] and SERVICES["redis"]["volumes"]


def _filled_in(value: str, env: dict[str, str]) -> str:
    """``${VAR:-default}`` and ``${VAR:?message}`` as docker compose fills them in from ``env``."""
    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"compose refuses to start without {name}: {rest}")
        return rest or ""
    return re.sub(r"\$\{(\w+)(?::([-?])([^}]*))?\}", one, str(value))


def _settings_from_compose(env: dict[str, str]) -> Settings:
    values = {name.lower(): _filled_in(value, env) for name, value in SERVICES["web"]["environment"].items()}
    return Settings(_env_file=None, **values)


def test_the_compose_settings_hold_together_in_production_and_for_a_local_trial():
    secret = {"SECRET_KEY": secrets.token_urlsafe(32)}
    assert _settings_from_compose({**secret, "BASE_URL": "https://papers.example.org"}).environment == "production"
    trial = _settings_from_compose({**secret, "ENVIRONMENT": "development", "BASE_URL": "http://localhost:8000"})
    assert trial.base_url == "http://localhost:8000"
    with pytest.raises(KeyError, match="BASE_URL"):
        _settings_from_compose(secret)
    with pytest.raises(ValidationError, match="BASE_URL must be an https:// URL"):
        _settings_from_compose({**secret, "BASE_URL": "http://localhost:8000"})
