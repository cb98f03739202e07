"""Bad links: tampered, expired, wrong-purpose, unknown or garbage tokens get one generic page and change nothing."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from fastapi.testclient import TestClient

from pipeline import service
from pipeline.audience.tokens import Purpose, Signer
from pipeline.models import SubscriberStatus
from pipeline.web import create_app
from tests.support.web import GENERIC_BAD_LINK, Recorder, add, get, snapshot, token

# (method, path template, the purpose its token must have)
ROUTES = [
    ("GET", "/confirm/{}", Purpose.confirm),
    ("POST", "/confirm/{}", Purpose.confirm),
    ("GET", "/u/{}", Purpose.unsubscribe),
    ("POST", "/u/{}", Purpose.unsubscribe),
    ("POST", "/u/{}/resubscribe", Purpose.unsubscribe),
    ("GET", "/p/{}", Purpose.preferences),
    ("POST", "/p/{}", Purpose.preferences),
    ("POST", "/p/{}/interests", Purpose.preferences),
    ("POST", "/p/{}/interests/remove", Purpose.preferences),
    ("POST", "/p/{}/votes/clear", Purpose.preferences),
    ("GET", "/f/{}?paper=2503.16428&vote=more", Purpose.feedback),
    ("POST", "/f/{}", Purpose.feedback),
]
DAY = 86400


@pytest.fixture
def cfg(make_settings, database_url):
    return make_settings(database_url=database_url, pending_expiry_days=1)


def bad_tokens(cfg, purpose: Purpose, uid: str) -> dict[str, str]:
    good = token(cfg, purpose, uid)
    other = Purpose.preferences if purpose is not Purpose.preferences else Purpose.unsubscribe
    return {
        "tampered-signature": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "tampered-uid": "x" + good,
        "wrong-purpose": token(cfg, other, uid),
        "other-secret": Signer("another-secret-entirely-0123456789", purpose).sign(uid),
        "unknown-uid": token(cfg, purpose, "no-such-uid"),
        "garbage": "not-a-token",
        "unsigned-uid": uid,
        "odd-characters": "%C3%A9t%C3%A9." + good,
    }


@pytest.mark.parametrize(("method", "template", "purpose"), ROUTES, ids=[f"{m} {t}" for m, t, _ in ROUTES])
def test_every_bad_token_gets_the_same_page_and_changes_nothing(cfg, method, template, purpose):
    # A state the route's action would change, so a wrongly accepted token would show in the snapshot.
    status = SubscriberStatus.unsubscribed if template.endswith("/resubscribe") else SubscriberStatus.pending
    sub = add(cfg, "reader@example.org", status)
    sent = Recorder(cfg)
    form = {"List-Unsubscribe": "One-Click", "frequency": "weekly", "weekday": "3", "digest_size": "7",
            "kind": "keyword", "value": "diffusion", "paper": "2503.16428", "vote": "more"}
    before = snapshot(cfg)
    bodies = set()
    with TestClient(create_app(cfg, send_confirmation=sent)) as client:
        for kind, bad in bad_tokens(cfg, purpose, sub.uid).items():
            r = client.request(method, template.format(bad), data=form if method == "POST" else None,
                               follow_redirects=False)
            assert r.status_code == 400, kind
            assert GENERIC_BAD_LINK in r.text, kind
            assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
            assert "reader@example.org" not in r.text, kind
            assert snapshot(cfg) == before, kind
            bodies.add(r.text)
    assert len(bodies) == 1, "one generic answer: the page must not tell why a link was refused"
    assert sent.ids == []


def test_every_action_refuses_a_token_of_each_other_purpose(make_settings):
    cfg = make_settings()
    sub = add(cfg, "reader@example.org", SubscriberStatus.unsubscribed)
    before = snapshot(cfg)
    with TestClient(create_app(cfg, send_confirmation=Recorder(cfg))) as client:
        for method, template, purpose in ROUTES:
            for other in Purpose:
                if other is purpose:
                    continue
                r = client.request(method, template.format(token(cfg, other, sub.uid)))
                assert r.status_code == 400, (method, template, other)
    assert snapshot(cfg) == before


def test_an_expired_confirmation_link_is_refused(cfg):
    sub = add(cfg, "late@example.org", SubscriberStatus.pending)
    stale = token(cfg, Purpose.confirm, sub.uid, at=time.time() - 2 * DAY)  # pending_expiry_days=1
    before = snapshot(cfg)
    with TestClient(create_app(cfg, send_confirmation=Recorder(cfg))) as client:
        for method in ("GET", "POST"):
            r = client.request(method, f"/confirm/{stale}")
            assert r.status_code == 400 and GENERIC_BAD_LINK in r.text
    assert snapshot(cfg) == before
    assert get(cfg, "late@example.org").status is SubscriberStatus.pending


def test_a_confirmation_link_within_its_expiry_works(cfg):
    sub = add(cfg, "prompt@example.org", SubscriberStatus.pending)
    recent = token(cfg, Purpose.confirm, sub.uid, at=time.time() - DAY / 2)
    with TestClient(create_app(cfg, send_confirmation=Recorder(cfg))) as client:
        assert client.post(f"/confirm/{recent}").status_code == 200
    assert get(cfg, "prompt@example.org").status is SubscriberStatus.active


def test_unsubscribe_and_preference_links_never_expire(make_settings):
    cfg = make_settings(pending_expiry_days=1)
    sub = add(cfg, "old-mail@example.org")
    years_ago = 1_500_000_000.0
    unsub = token(cfg, Purpose.unsubscribe, sub.uid, at=years_ago)
    prefs = token(cfg, Purpose.preferences, sub.uid, at=years_ago)
    with TestClient(create_app(cfg, send_confirmation=Recorder(cfg))) as client:
        assert client.get(f"/p/{prefs}").status_code == 200
        assert client.post(f"/u/{unsub}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert get(cfg, "old-mail@example.org").status is SubscriberStatus.unsubscribed


def test_a_replayed_link_of_a_forgotten_address_is_refused(make_settings):
    """After housekeeping forgot an unconfirmed address, its old links name nobody."""
    cfg = make_settings()
    sub = add(cfg, "forgotten@example.org", SubscriberStatus.pending)
    links = [f"/confirm/{token(cfg, Purpose.confirm, sub.uid)}", f"/u/{token(cfg, Purpose.unsubscribe, sub.uid)}",
             f"/p/{token(cfg, Purpose.preferences, sub.uid)}"]
    assert service.housekeeping(cfg, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).forgotten == 1
    with TestClient(create_app(cfg, send_confirmation=Recorder(cfg))) as client:
        for link in links:
            assert client.post(link).status_code == 400
            assert client.get(link).status_code == 400
    assert snapshot(cfg) == []
