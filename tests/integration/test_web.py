"""The site through its HTTP interface: every route, on SQLite and PostgreSQL where state changes."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import secrets

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from pipeline import service
from pipeline.audience.subscribers import add_subscriber
from pipeline.audience.tokens import Purpose
from pipeline.compose import slots
from pipeline.models import Edition, Frequency, SubscriberStatus
from pipeline.web import create_app
from tests.support.web import Recorder, add, get, hrefs_and_actions, snapshot, token

DAY = dt.date(2025, 3, 21)
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
CHECK_INBOX = "Check your inbox"


@pytest.fixture
def cfg(make_settings, database_url):
    return make_settings(database_url=database_url, subscribe_rate_limit="1000/minute")


@pytest.fixture
def sqlite_cfg(make_settings):
    """For tests about pages and headers, where the database engine does not matter."""
    return make_settings(subscribe_rate_limit="1000/minute")


@pytest.fixture
def sent(cfg):
    return Recorder(cfg)


@pytest.fixture
def client(cfg, sent):
    with TestClient(create_app(cfg, send_confirmation=sent)) as c:
        yield c


@pytest.fixture
def page_client(sqlite_cfg):
    with TestClient(create_app(sqlite_cfg, send_confirmation=Recorder(sqlite_cfg))) as c:
        yield c


def title(html: str) -> str:
    match = re.search(r"<title>(.*?)</title>", html, re.S)
    assert match, "every page has a <title>"
    return match.group(1)


def h1(html: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert match, "every page has a heading"
    return match.group(1)


def assert_security_headers(response, *, no_store: bool = True) -> None:
    h = response.headers
    assert h["referrer-policy"] == "no-referrer"
    assert h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "DENY"
    assert h["content-security-policy"] == CSP
    assert "set-cookie" not in h
    if no_store:
        assert h["cache-control"] == "no-store"


# --- landing and subscribe ---------------------------------------------------------------------


def test_landing_page_explains_the_list_and_has_the_form(page_client, sqlite_cfg):
    r = page_client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert sqlite_cfg.list_name in title(html) and sqlite_cfg.list_name in h1(html)
    assert "a daily email of the machine-learning papers that are trending" in html
    form = re.search(r'<form method="post" action="/subscribe">(.*?)</form>', html, re.S)
    assert form
    email_input = re.search(r"<input [^>]*name=\"email\"[^>]*>", form.group(1)).group(0)
    for attribute in ('type="email"', " required", 'autocomplete="email"'):
        assert attribute in email_input
    assert 'href="/issues"' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<script" not in html  # no JavaScript
    links = re.findall(r"<link [^>]*>", html)  # no external assets: the only links name the feeds, never fetched
    assert len(links) == 2 and all('rel="alternate"' in link for link in links)
    assert_security_headers(r)


def test_subscribe_stores_a_pending_address_and_mails_it_after_the_commit(client, cfg, sent):
    r = client.post("/subscribe", data={"email": "  Reader@Example.org "})
    assert r.status_code == 200 and h1(r.text) == CHECK_INBOX
    sub = get(cfg, "reader@example.org")
    assert sub is not None and sub.status is SubscriberStatus.pending
    assert sent.ids == [sub.id]
    assert sent.status_seen == [SubscriberStatus.pending]  # the row was committed before the mail was scheduled
    assert_security_headers(r)


def test_subscribe_accepts_a_multipart_form(client, cfg, sent):
    r = client.post("/subscribe", files={"email": (None, "multi@example.org")})
    assert r.status_code == 200 and h1(r.text) == CHECK_INBOX
    assert get(cfg, "multi@example.org").status is SubscriberStatus.pending
    assert len(sent.ids) == 1


def test_the_answer_is_the_same_whatever_the_address_state(client, cfg, sent):
    add(cfg, "active@example.org", SubscriberStatus.active)
    unsubscribed = add(cfg, "gone@example.org", SubscriberStatus.unsubscribed)
    add(cfg, "bounced@example.org", SubscriberStatus.bounced)
    answers = set()
    for address in ("new@example.org", "active@example.org", "gone@example.org", "bounced@example.org"):
        for _ in range(2):  # the second request within a day looks like the first, for everyone
            r = client.post("/subscribe", data={"email": address})
            answers.add((r.status_code, r.text, tuple(sorted((k, v) for k, v in r.headers.items()
                                                              if k != "content-length"))))
    assert len(answers) == 1, "the answer must not tell which addresses are known"
    assert next(iter(answers))[0] == 200
    # Only the new and the unsubscribed address need (and get) a confirmation mail, once each.
    assert sorted(sent.ids) == sorted([get(cfg, "new@example.org").id, unsubscribed.id])
    assert get(cfg, "active@example.org").status is SubscriberStatus.active
    assert get(cfg, "bounced@example.org").status is SubscriberStatus.bounced
    assert get(cfg, "gone@example.org").status is SubscriberStatus.unsubscribed  # until they confirm


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Please enter your email address"),
        ("   ", "Please enter your email address"),
        ("no-at-sign.example.org", "is not a valid email address"),
        ("a@b.c\r\nBcc: x@y", "cannot contain line breaks or control characters"),
        ("a@b.c\nBcc: x@y", "cannot contain line breaks or control characters"),
        ("nul\x00@example.org", "cannot contain line breaks or control characters"),
        ("tab\t@example.org", "cannot contain line breaks or control characters"),
        ("x" * 250 + "@example.org", "is not a valid email address"),
        ("jörg@example.org", "has characters before the @ that many mail servers cannot deliver"),
        ("=HYPERLINK(\"x\")@example.org", "is not a valid email address"),
        ("=cmd@example.org", "must not begin with = + - or @"),
        ("-2+3@example.org", "must not begin with = + - or @"),
        ("y" * 5000 + "@example.org", "far too long"),
    ],
    ids=["empty", "blank", "no-at", "crlf-header", "lf", "nul", "tab", "too-long", "non-ascii-local",
         "formula-quoted", "formula", "formula-minus", "huge"],
)
def test_bad_addresses_get_the_form_again_with_the_reason(client, cfg, sent, raw, message):
    before = snapshot(cfg)
    r = client.post("/subscribe", data={"email": raw})
    assert r.status_code == 400
    assert message in r.text
    assert CHECK_INBOX not in r.text
    assert 'action="/subscribe"' in r.text and 'name="email"' in r.text
    assert snapshot(cfg) == before and sent.ids == []
    assert_security_headers(r)


def test_the_typed_value_comes_back_in_the_form_escaped(page_client):
    hostile = '"><script>alert(1)</script>@example.org'
    r = page_client.post("/subscribe", data={"email": hostile})
    assert r.status_code == 400
    assert "<script>" not in r.text
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@example.org"' in r.text


@pytest.mark.parametrize("body", [{}, {"other": "x"}], ids=["empty-form", "other-field"])
def test_a_missing_field_is_a_400_page_not_json(page_client, body):
    r = page_client.post("/subscribe", data=body)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert "Please enter your email address" in r.text


def test_a_non_form_body_is_a_400_page_not_json(page_client):
    r = page_client.post("/subscribe", json={"email": "json@example.org"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    r = page_client.post("/subscribe", files={"email": ("upload.txt", b"file@example.org", "text/plain")})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")


def test_subscribe_requests_are_limited_per_client_ip(make_settings):
    cfg = make_settings(subscribe_rate_limit="2/minute")
    sent = Recorder(cfg)
    with TestClient(create_app(cfg, send_confirmation=sent)) as client:
        for i in range(2):
            assert client.post("/subscribe", data={"email": f"r{i}@example.org"}).status_code == 200
        r = client.post("/subscribe", data={"email": "r2@example.org"})
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert title(r.text) and "too many subscribe requests" in r.text
        assert get(cfg, "r2@example.org") is None and len(sent.ids) == 2
        # Without trust_proxy_headers a forged X-Forwarded-For buys nothing.
        r = client.post("/subscribe", data={"email": "r3@example.org"}, headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 429
        assert_security_headers(r)


def test_behind_a_trusted_proxy_the_limit_is_per_forwarded_address(make_settings):
    cfg = make_settings(subscribe_rate_limit="1/minute", trust_proxy_headers=True)
    with TestClient(create_app(cfg, send_confirmation=Recorder(cfg))) as client:
        def post(email, forwarded):
            return client.post("/subscribe", data={"email": email}, headers={"X-Forwarded-For": forwarded})

        # The proxy appends the address it saw; whatever the client put before it is not believed.
        assert post("p1@example.org", "203.0.113.1").status_code == 200
        assert post("p2@example.org", "10.9.9.9, 203.0.113.1").status_code == 429
        assert post("p3@example.org", "203.0.113.1, 203.0.113.2").status_code == 200


@pytest.mark.redis
def test_the_limit_is_shared_by_every_worker_through_redis(make_settings, redis_url):
    cfg = make_settings(subscribe_rate_limit="1/minute", rate_limit_storage=redis_url, trust_proxy_headers=True)
    client_ip = f"192.0.2.{secrets.randbelow(250) + 1}-{secrets.token_hex(4)}"  # a key no earlier run used
    first, second = (create_app(cfg, send_confirmation=Recorder(cfg)) for _ in range(2))  # two workers
    with TestClient(first) as a, TestClient(second) as b:
        assert a.post("/subscribe", data={"email": "w1@example.org"},
                      headers={"X-Forwarded-For": client_ip}).status_code == 200
        assert b.post("/subscribe", data={"email": "w2@example.org"},
                      headers={"X-Forwarded-For": client_ip}).status_code == 429


def test_a_second_request_for_one_address_within_a_day_sends_no_second_mail_and_says_nothing(client, cfg, sent):
    first = client.post("/subscribe", data={"email": "twice@example.org"})
    second = client.post("/subscribe", data={"email": "Twice@example.org"})
    assert first.status_code == second.status_code == 200 and first.text == second.text
    assert "retry-after" not in second.headers
    assert len(sent.ids) == 1


def test_an_internationalized_domain_is_stored_and_mailed_in_its_ascii_form(make_settings):
    cfg = make_settings(subscribe_rate_limit="1000/minute")
    with TestClient(create_app(cfg)) as client:  # the real mail step: an .eml in the outbox
        r = client.post("/subscribe", data={"email": "idn@bücher.example"})
    assert r.status_code == 200 and h1(r.text) == CHECK_INBOX
    assert get(cfg, "idn@xn--bcher-kva.example").status is SubscriberStatus.pending
    mails = list((cfg.outbox_dir / "confirmations").glob("*.eml"))
    assert [m.name for m in mails] == ["idn@xn--bcher-kva.example.eml"]
    assert b"To: idn@xn--bcher-kva.example" in mails[0].read_bytes()


def test_a_failing_mail_step_never_shows_an_error(make_settings, caplog):
    cfg = make_settings()

    def broken(subscriber_id: int) -> None:
        raise ConnectionRefusedError("no mail server")

    with TestClient(create_app(cfg, send_confirmation=broken)) as client:
        r = client.post("/subscribe", data={"email": "unlucky@example.org"})
    assert r.status_code == 200 and h1(r.text) == CHECK_INBOX
    assert "could not send the confirmation" in caplog.text


def test_the_default_sender_mails_a_working_confirmation_link(make_settings, smtp_server):
    handler, smtp_url = smtp_server
    cfg = make_settings(smtp_url=smtp_url)
    with TestClient(create_app(cfg)) as client:
        r = client.post("/subscribe", data={"email": "inbox@example.org"})
        assert r.status_code == 200
        [received] = handler.to("inbox@example.org")
        text = received.message.get_body(("plain",)).get_content()
        link = re.search(r"https://papers\.example\.org(/confirm/[A-Za-z0-9_.\-]+)", text).group(1)
        assert "inbox" not in link  # never the address in a URL
        page = client.get(link)
        assert page.status_code == 200 and "Confirm my subscription" in page.text
        assert get(cfg, "inbox@example.org").status is SubscriberStatus.pending
        done = client.post(link)
        assert done.status_code == 200 and h1(done.text) == "You're subscribed"
    assert get(cfg, "inbox@example.org").status is SubscriberStatus.active


# --- confirm -----------------------------------------------------------------------------------


def test_confirm_shows_a_button_on_get_and_confirms_on_post(client, cfg):
    sub = add(cfg, "pending@example.org", SubscriberStatus.pending)
    path = f"/confirm/{token(cfg, Purpose.confirm, sub.uid)}"
    before = snapshot(cfg)
    r = client.get(path)
    assert r.status_code == 200 and snapshot(cfg) == before
    button = rf'<form method="post" action="{re.escape(path)}">\s*<button type="submit">Confirm my subscription'
    assert re.search(button, r.text)
    assert r.text.count("<button") == 1
    assert "pending@example.org" in r.text
    assert_security_headers(r)

    first = client.post(path)
    assert first.status_code == 200 and h1(first.text) == "You're subscribed"
    confirmed = get(cfg, "pending@example.org")
    assert confirmed.status is SubscriberStatus.active and confirmed.confirmed_at is not None
    prefs = token(cfg, Purpose.preferences, sub.uid)
    assert f'href="/p/{prefs}"' in first.text
    assert_security_headers(first)

    second = client.post(path)
    assert second.status_code == 200 and second.text == first.text
    assert get(cfg, "pending@example.org").confirmed_at == confirmed.confirmed_at


@pytest.mark.parametrize(("status", "words"), [
    (SubscriberStatus.unsubscribed, "Subscribe again"),
    (SubscriberStatus.bounced, "contact the list owner"),
])
def test_confirming_an_address_that_left_since_says_so(client, cfg, status, words):
    sub = add(cfg, "left@example.org", status)
    path = f"/confirm/{token(cfg, Purpose.confirm, sub.uid)}"
    for r in (client.get(path), client.post(path)):
        assert r.status_code == 200 and words in r.text
    assert get(cfg, "left@example.org").status is status


# --- pages never change anything on GET --------------------------------------------------------


def test_no_get_changes_the_database(client, cfg):
    subs = [add(cfg, f"{s.value}@example.org", s) for s in SubscriberStatus]
    before = snapshot(cfg)
    paths = ["/", "/issues", "/healthz", "/issues/2025-03-21"]
    for sub in subs:
        paths += [f"/confirm/{token(cfg, Purpose.confirm, sub.uid)}", f"/u/{token(cfg, Purpose.unsubscribe, sub.uid)}",
                  f"/p/{token(cfg, Purpose.preferences, sub.uid)}",
                  f"/u/{token(cfg, Purpose.unsubscribe, sub.uid)}/resubscribe",
                  f"/f/{token(cfg, Purpose.feedback, sub.uid)}?paper=2503.16428&vote=less"]
    for path in paths:
        r = client.get(path)
        assert r.status_code in (200, 404, 405), path
        assert snapshot(cfg) == before, path


# --- unsubscribe (RFC 8058) and resubscribe ----------------------------------------------------


def test_unsubscribe_page_has_one_button_that_posts(client, cfg):
    sub = add(cfg, "reader@example.org")
    path = f"/u/{token(cfg, Purpose.unsubscribe, sub.uid)}"
    r = client.get(path)
    assert r.status_code == 200 and h1(r.text) == "Unsubscribe"
    assert r.text.count("<button") == 1 and f'<form method="post" action="{path}">' in r.text
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in r.text
    assert get(cfg, "reader@example.org").status is SubscriberStatus.active
    assert_security_headers(r)


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart", "empty"])
def test_one_click_unsubscribe_answers_200_at_once_and_is_idempotent(client, cfg, encoding):
    sub = add(cfg, "reader@example.org")
    path = f"/u/{token(cfg, Purpose.unsubscribe, sub.uid)}"
    body = {"urlencoded": {"data": {"List-Unsubscribe": "One-Click"}},
            "multipart": {"files": {"List-Unsubscribe": (None, "One-Click")}},
            "empty": {}}[encoding]
    r = client.post(path, follow_redirects=False, **body)
    assert r.status_code == 200 and not r.is_redirect
    assert "set-cookie" not in r.headers and not client.cookies
    assert h1(r.text) == "You're unsubscribed"
    assert f'action="{path}/resubscribe"' in r.text and "Resubscribe" in r.text
    assert f'href="/p/{token(cfg, Purpose.preferences, sub.uid)}"' in r.text
    assert_security_headers(r)
    gone = get(cfg, "reader@example.org")
    assert gone.status is SubscriberStatus.unsubscribed and gone.unsubscribed_at is not None

    again = client.post(path, follow_redirects=False, **body)
    assert again.status_code == 200 and h1(again.text) == "You're unsubscribed"
    assert get(cfg, "reader@example.org").unsubscribed_at == gone.unsubscribed_at


def test_the_unsubscribe_page_of_an_unsubscribed_address_offers_resubscribing(client, cfg):
    sub = add(cfg, "gone@example.org", SubscriberStatus.unsubscribed)
    path = f"/u/{token(cfg, Purpose.unsubscribe, sub.uid)}"
    r = client.get(path)
    assert r.status_code == 200 and h1(r.text) == "You're unsubscribed"
    assert f'<form method="post" action="{path}/resubscribe">' in r.text


def test_resubscribe_sends_a_confirmation_instead_of_subscribing(client, cfg, sent):
    """The button may be pressed from a years-old, forwarded mail, or by another site's form."""
    sub = add(cfg, "back@example.org", SubscriberStatus.unsubscribed)
    path = f"/u/{token(cfg, Purpose.unsubscribe, sub.uid)}/resubscribe"
    r = client.post(path, headers={"Origin": "https://elsewhere.example"})
    assert r.status_code == 200 and h1(r.text) == CHECK_INBOX and "back@example.org" in r.text
    assert get(cfg, "back@example.org").status is SubscriberStatus.unsubscribed
    assert sent.ids == [sub.id]
    assert client.post(path).text == r.text and sent.ids == [sub.id]  # twice: the same page, no second mail
    assert_security_headers(r)


def test_a_fresh_confirmation_after_resubscribe_brings_the_address_back(make_settings):
    cfg = make_settings(subscribe_rate_limit="1000/minute")
    sub = add(cfg, "back@example.org", SubscriberStatus.unsubscribed)
    with TestClient(create_app(cfg)) as client:
        client.post(f"/u/{token(cfg, Purpose.unsubscribe, sub.uid)}/resubscribe")
        raw = (cfg.outbox_dir / "confirmations" / "back@example.org.eml").read_bytes()
        text = email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",)).get_content()
        link = re.search(r"/confirm/[A-Za-z0-9_.\-]+", text).group(0)
        assert client.get(link).status_code == 200
        assert get(cfg, "back@example.org").status is SubscriberStatus.unsubscribed  # a GET changes nothing
        r = client.post(link)
    assert r.status_code == 200 and h1(r.text) == "You're subscribed"
    assert get(cfg, "back@example.org").status is SubscriberStatus.active


def test_a_bounced_address_stays_bounced(client, cfg):
    sub = add(cfg, "bounced@example.org", SubscriberStatus.bounced)
    r = client.post(f"/u/{token(cfg, Purpose.unsubscribe, sub.uid)}/resubscribe")
    assert r.status_code == 200 and "contact the list owner" in r.text
    assert get(cfg, "bounced@example.org").status is SubscriberStatus.bounced


# --- preferences -------------------------------------------------------------------------------


def test_the_preferences_form_is_filled_in(make_settings):
    cfg = make_settings(digest_size=12)
    plain = add(cfg, "plain@example.org")
    chosen = add(cfg, "chosen@example.org", paused=True, frequency=Frequency.weekly, weekday=3, digest_size=7)
    with TestClient(create_app(cfg, send_confirmation=Recorder(cfg))) as client:
        r = client.get(f"/p/{token(cfg, Purpose.preferences, plain.uid)}")
        assert r.status_code == 200 and h1(r.text) == "Your preferences"
        html = r.text
        assert 'name="paused" value="on">' in html  # not checked
        assert 'value="daily" checked' in html and 'value="weekly" checked' not in html
        assert '<option value="0" selected>Monday</option>' in html
        assert 'name="digest_size" min="5" max="25" step="1" value="12"' in html  # the list's default
        assert "Weekly mail arrives on" in html
        assert f'<form method="post" action="/u/{token(cfg, Purpose.unsubscribe, plain.uid)}">' in html
        assert_security_headers(r)

        html = client.get(f"/p/{token(cfg, Purpose.preferences, chosen.uid)}").text
        assert 'name="paused" value="on" checked' in html
        assert 'value="weekly" checked' in html
        assert '<option value="3" selected>Thursday</option>' in html
        assert 'value="7"' in html


def test_preferences_are_saved(client, cfg):
    sub = add(cfg, "prefs@example.org")
    path = f"/p/{token(cfg, Purpose.preferences, sub.uid)}"
    r = client.post(path, data={"paused": "on", "frequency": "weekly", "weekday": "4", "digest_size": "7"})
    assert r.status_code == 200 and "Saved." in r.text
    saved = get(cfg, "prefs@example.org")
    assert (saved.paused, saved.frequency, saved.weekday, saved.digest_size) == (True, Frequency.weekly, 4, 7)
    assert 'name="paused" value="on" checked' in r.text and '<option value="4" selected>Friday</option>' in r.text

    # An unchecked box is left out by the browser: that means "not paused".
    r = client.post(path, files={"frequency": (None, "daily"), "weekday": (None, "4"), "digest_size": (None, "25")})
    assert r.status_code == 200 and "Saved." in r.text
    saved = get(cfg, "prefs@example.org")
    assert (saved.paused, saved.frequency, saved.digest_size) == (False, Frequency.daily, 25)


def test_the_order_and_the_empty_day_preferences_are_saved(client, cfg):
    sub = add(cfg, "mix@example.org")
    path = f"/p/{token(cfg, Purpose.preferences, sub.uid)}"
    page = client.get(path).text
    assert '<option value="50" selected>Balanced</option>' in page and 'name="send_anyway" value="on">' in page
    r = client.post(path, data={"mix": "80", "send_anyway": "on", "frequency": "daily", "digest_size": "10"})
    assert r.status_code == 200 and "Saved." in r.text
    saved = get(cfg, "mix@example.org")
    assert (saved.mix, saved.send_anyway) == (80, True)
    assert '<option value="80" selected>Mostly for me</option>' in r.text and 'name="send_anyway" value="on" checked' in r.text
    r = client.post(path, data={"mix": "20", "frequency": "daily", "digest_size": "10"})  # the box left unchecked
    assert (get(cfg, "mix@example.org").mix, get(cfg, "mix@example.org").send_anyway) == (20, False)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("digest_size", "4", "number of papers must be between 5 and 25"),
        ("digest_size", "26", "number of papers must be between 5 and 25"),
        ("digest_size", "many", "number of papers must be between 5 and 25"),
        ("weekday", "7", "must be one of Monday to Sunday"),
        ("weekday", "-1", "must be one of Monday to Sunday"),
        ("frequency", "hourly", "How often must be daily or weekly"),
        ("mix", "101", "Choose how your papers are ordered"),
        ("mix", "lots", "Choose how your papers are ordered"),
    ],
)
def test_bad_preferences_are_refused_with_a_clear_message(client, cfg, field, value, message):
    sub = add(cfg, "prefs@example.org")
    before = snapshot(cfg)
    form = {"frequency": "weekly", "weekday": "2", "digest_size": "9", field: value}
    r = client.post(f"/p/{token(cfg, Purpose.preferences, sub.uid)}", data=form)
    assert r.status_code == 400
    assert message in r.text and "Saved." not in r.text
    assert f'<form method="post" action="/p/{token(cfg, Purpose.preferences, sub.uid)}">' in r.text
    assert snapshot(cfg) == before


def test_a_hostile_preference_value_is_escaped(page_client, sqlite_cfg):
    sub = add(sqlite_cfg, "prefs@example.org")
    r = page_client.post(f"/p/{token(sqlite_cfg, Purpose.preferences, sub.uid)}",
                         data={"digest_size": '"><script>alert(1)</script>'})
    assert r.status_code == 400 and "<script>" not in r.text


def test_no_page_puts_the_address_in_a_url(client, cfg):
    sub = add(cfg, "private@example.org", SubscriberStatus.pending)
    pages = [client.get(f"/confirm/{token(cfg, Purpose.confirm, sub.uid)}"),
             client.post(f"/confirm/{token(cfg, Purpose.confirm, sub.uid)}"),
             client.get(f"/p/{token(cfg, Purpose.preferences, sub.uid)}"),
             client.get(f"/u/{token(cfg, Purpose.unsubscribe, sub.uid)}"),
             client.post(f"/u/{token(cfg, Purpose.unsubscribe, sub.uid)}")]
    for r in pages:
        assert r.status_code == 200
        assert "private@example.org" in r.text  # shown, escaped, to the holder of a valid token
        assert all("private" not in url and "@" not in url for url in hrefs_and_actions(r.text))


# --- archive -----------------------------------------------------------------------------------


def test_the_archive_lists_sent_issues_and_shows_them_without_personal_links(client, cfg):
    service.ingest(cfg, day=DAY, source="sample")
    with Session(service.engine(cfg)) as session:
        add_subscriber(session, email="reader@example.org", confirmed=True)
        session.commit()
    service.build(cfg, day=DAY)
    service.build(cfg, day=DAY, edition=Edition.weekly)  # built, never sent: not public yet
    assert client.get("/issues").text.count('<li class="issue">') == 0
    service.start_sending(cfg, day=DAY)

    r = client.get("/issues")
    assert r.status_code == 200 and h1(r.text) == "Past issues"
    assert r.text.count('<li class="issue">') == 1
    assert 'href="/issues/2025-03-21"' in r.text and "daily" in r.text and "Friday, 21 March 2025" in r.text
    assert "Training-Free Efficient Video Generation" in r.text  # the issue's top paper
    assert_security_headers(r, no_store=False)

    page = client.get("/issues/2025-03-21")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Training-Free Efficient Video Generation" in page.text
    for slot in (slots.UNSUBSCRIBE_URL, slots.PREFERENCES_URL, "pm-slot"):
        assert slot not in page.text
    assert "/u/" not in page.text and "/p/" not in page.text
    assert "Unsubscribe" not in page.text and "Preferences" not in page.text
    assert_security_headers(page, no_store=False)

    assert client.get("/issues/2025-03-21/weekly").status_code == 404  # built but not sent


def test_a_sent_weekly_issue_has_its_own_page(client, cfg):
    service.ingest(cfg, day=DAY, source="sample")
    add(cfg, "weekly@example.org", frequency=Frequency.weekly, weekday=5)
    service.build(cfg, day=DAY, edition=Edition.weekly)
    service.start_sending(cfg, day=DAY, edition=Edition.weekly)
    listing = client.get("/issues").text
    assert 'href="/issues/2025-03-21/weekly"' in listing and "weekly" in listing
    r = client.get("/issues/2025-03-21/weekly")
    assert r.status_code == 200 and "pm-slot" not in r.text
    assert client.get("/issues/2025-03-21").status_code == 404  # the daily one was never sent


@pytest.mark.parametrize("path", ["/issues/2025-03-22", "/issues/2025-13-01", "/issues/20250321",
                                  "/issues/yesterday", "/issues/2025-03-21/monthly", "/issues/%3Cscript%3E",
                                  "/nowhere"])
def test_unknown_pages_are_a_404_page(page_client, path):
    r = page_client.get(path)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert h1(r.text) == "Page not found" and "<script>" not in r.text
    assert_security_headers(r)


def test_a_wrong_method_is_a_405_page(page_client):
    r = page_client.put("/subscribe")
    assert r.status_code == 405 and r.headers["content-type"].startswith("text/html")
    assert r.headers["allow"] == "POST"
    assert title(r.text) and h1(r.text)
    assert_security_headers(r)
    assert page_client.post("/issues").status_code == 405


def test_no_api_docs_pages_that_would_need_javascript(page_client):
    assert page_client.get("/docs").status_code == 404
    assert page_client.get("/redoc").status_code == 404


# --- health ------------------------------------------------------------------------------------


def test_healthz_is_ok_with_tasks_in_process(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"database": "ok", "broker": "in-process"}
    assert_security_headers(r)


def test_healthz_is_503_when_the_broker_is_unreachable(make_settings):
    cfg = make_settings(broker_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(cfg)) as client:
        r = client.get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["database"] == "ok" and body["broker"].startswith("error: ")


def test_healthz_is_503_when_the_database_is_unreachable(make_settings):
    cfg = make_settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    with TestClient(create_app(cfg), raise_server_exceptions=False) as client:
        r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["database"].startswith("error: ") and r.json()["broker"] == "in-process"


@pytest.mark.redis
def test_healthz_is_ok_with_a_reachable_redis_broker(make_settings, redis_url):
    cfg = make_settings(broker_url=redis_url)
    with TestClient(create_app(cfg)) as client:
        r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"database": "ok", "broker": "ok"}


def test_an_unexpected_error_is_a_plain_500_page(make_settings, monkeypatch):
    cfg = make_settings()
    app = create_app(cfg)

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("pipeline.web.archive.find_issue", explode)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/issues/2025-03-21")
    assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")
    assert "secret internals" not in r.text and "Traceback" not in r.text
    assert r.headers["x-frame-options"] == "DENY"
