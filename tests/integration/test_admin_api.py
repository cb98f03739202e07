"""The operators' HTTP API, behind a bearer token."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pipeline import service
from pipeline.web import create_app
from tests.support.sending import DAY, prepare, send_all

TOKEN = "admin-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def cfg(make_settings, database_url, smtp_server):
    _, url = smtp_server
    return make_settings(database_url=database_url, smtp_url=url, admin_token=TOKEN)


@pytest.fixture
def client(cfg):
    with TestClient(create_app(cfg, send_confirmation=lambda _id: None)) as client:
        yield client


def test_without_a_configured_token_the_api_does_not_exist(make_settings):
    with TestClient(create_app(make_settings(), send_confirmation=lambda _id: None)) as client:
        assert client.get(f"/admin/issues/{DAY}", headers=AUTH).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}])
def test_a_wrong_or_missing_token_is_refused(client, headers):
    response = client.get(f"/admin/issues/{DAY}", headers=headers)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_status_resend_and_pause_over_http(client, cfg, smtp_server, smtp_script):
    handler, _ = smtp_server
    emails = prepare(cfg, n=4)
    smtp_script.rcpt_replies[emails[2]] = "550 5.1.1 no such user"
    send_all(cfg)
    smtp_script.rcpt_replies.clear()

    status = client.get(f"/admin/issues/{DAY}", headers=AUTH).json()
    assert status["status"] == "finished" and status["counts"]["failed"] == 1 and status["counts"]["sent"] == 3

    bad = client.post(f"/admin/issues/{DAY}/resend", headers=AUTH, json={"scope": "all", "reason": "x"})
    assert bad.status_code == 400 and "force" in bad.json()["error"]
    dry = client.post(f"/admin/issues/{DAY}/resend", headers=AUTH, json={"scope": "failed", "dry_run": True})
    assert dry.status_code == 200 and dry.json()["recipients"] == [emails[2]] and len(handler.messages) == 3

    done = client.post(f"/admin/issues/{DAY}/resend", headers=AUTH,
                       json={"scope": "failed", "reason": "address fixed by the user"})
    assert done.status_code == 202 and done.json()["resend_id"] is not None
    assert sorted(r for m in handler.messages for r in m.rcpt) == emails  # dispatched after the answer
    again = client.post(f"/admin/issues/{DAY}/resend", headers=AUTH,
                        json={"scope": "failed", "reason": "address fixed by the user"})
    assert again.status_code == 200 and again.json()["resend_id"] is None and len(handler.messages) == 4

    assert client.post(f"/admin/issues/{DAY}/pause", headers=AUTH, json={}).status_code == 409  # finished
    assert client.get("/admin/issues/2030-01-01", headers=AUTH).status_code == 404


def test_pause_and_resume_over_http(client, cfg, smtp_server):
    handler, _ = smtp_server
    prepare(cfg, n=3)
    service.start_sending(cfg, day=DAY)
    assert client.post(f"/admin/issues/{DAY}/pause", headers=AUTH, json={"reason": "wrong subject"}).json() == {
        "paused": True}
    assert client.get(f"/admin/issues/{DAY}", headers=AUTH).json()["paused_reason"] == "wrong subject"
    assert client.post(f"/admin/issues/{DAY}/resume", headers=AUTH).status_code == 202
    assert len(handler.messages) == 3
    assert client.get(f"/admin/issues/{DAY}", headers=AUTH).json()["status"] == "finished"
