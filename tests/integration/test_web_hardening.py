"""The HTTP edge: the admin token before anything else, capped bodies, repeated wrong tokens slowed down,
no schema in production, HEAD wherever GET works, a true Allow, and clients counted per IPv6 /64."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipeline.audience.tokens import Purpose
from pipeline.models import SubscriberStatus
from pipeline.web import create_app
from tests.support.web import Recorder, add, get, token

TOKEN = "hardening-test-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DAY = "2025-03-21"
STRONG_SECRET = "Qm9vdHN0cmFwIHRoZSBzZWNyZXQga2V5IGZvciB0ZXN0cw-_0123"  # 52 base64url characters


@pytest.fixture
def cfg(make_settings):
    return make_settings(admin_token=TOKEN, subscribe_rate_limit="1000/minute")


class Served:
    """One request run through the app as a server runs it, noting how many body chunks the app took."""

    def __init__(self, app: Any, method: str, path: str, *, headers: dict[str, str] | None = None,
                 chunks: list[bytes] | None = None, client: str = "203.0.113.5") -> None:
        self.chunks = chunks or [b""]
        self.taken = 0
        self.messages: list[dict[str, Any]] = []
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
            "headers": [(b"host", b"testserver")] + [(k.lower().encode(), v.encode()) for k, v in
                                                     (headers or {}).items()],
            "client": (client, 50000), "server": ("testserver", 80),
        }
        asyncio.run(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        if self.taken == len(self.chunks):
            return {"type": "http.disconnect"}
        self.taken += 1
        return {"type": "http.request", "body": self.chunks[self.taken - 1],
                "more_body": self.taken < len(self.chunks)}

    async def _send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return self.messages[0]["status"]

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode().lower(): v.decode() for k, v in self.messages[0]["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


MB20 = 20 * 1024 * 1024
SLICES = [b"x" * 8192] * 100  # 800 KiB, sent chunked (no Content-Length)


# --- the admin token comes first (item 12) -----------------------------------------------------


def test_a_malformed_body_without_the_token_is_a_401_not_a_400(client):
    r = client.post(f"/admin/issues/{DAY}/resend", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert r.headers["content-type"] == "application/json" and "error" in r.json()


@pytest.mark.parametrize("headers", [{"Content-Length": str(MB20)}, {}], ids=["content-length", "chunked"])
def test_without_the_token_not_a_byte_of_the_body_is_read(cfg, headers):
    served = Served(create_app(cfg), "POST", f"/admin/issues/{DAY}/resend",
                    headers={**headers, "Authorization": "Bearer wrong"}, chunks=SLICES)
    assert served.status == 401 and served.headers["www-authenticate"] == "Bearer"
    assert served.taken == 0


def test_without_an_admin_token_set_every_admin_path_is_a_json_404(make_settings):
    app = create_app(make_settings())
    served = Served(app, "POST", f"/admin/issues/{DAY}/resend", headers={**AUTH, "Content-Length": "9"},
                    chunks=[b"{not json"])
    assert served.status == 404 and served.taken == 0
    with TestClient(app) as c:
        r = c.get("/admin/nothing/here")
        assert r.status_code == 404 and r.headers["content-type"] == "application/json"


# --- bodies are capped (item 12) ---------------------------------------------------------------


def test_a_declared_oversized_body_is_refused_unread(cfg):
    site = Served(create_app(cfg), "POST", "/subscribe", chunks=SLICES,
                  headers={"Content-Length": str(MB20), "Content-Type": "application/x-www-form-urlencoded"})
    assert site.status == 413 and site.taken == 0
    assert site.headers["content-type"].startswith("text/html") and b"<h1>Too large</h1>" in site.body
    api = Served(create_app(cfg), "POST", f"/admin/issues/{DAY}/pause", chunks=SLICES,
                 headers={**AUTH, "Content-Length": str(MB20), "Content-Type": "application/json"})
    assert api.status == 413 and api.taken == 0 and api.headers["content-type"] == "application/json"


def test_a_chunked_oversized_body_is_refused_at_the_cap_and_the_route_never_runs(cfg):
    sub = add(cfg, "stays@example.org")
    served = Served(create_app(cfg), "POST", f"/u/{token(cfg, Purpose.unsubscribe, sub.uid)}", chunks=SLICES,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert served.status == 413
    assert served.taken == 9  # 64 KiB is over after the ninth 8 KiB chunk; the other 91 stay unread
    assert get(cfg, "stays@example.org").status is SubscriberStatus.active  # the one-click POST did not act


def test_max_body_bytes_is_a_setting_and_small_bodies_still_work(make_settings):
    cfg = make_settings(max_body_bytes=2048, subscribe_rate_limit="1000/minute")
    with TestClient(create_app(cfg, send_confirmation=Recorder(cfg))) as c:
        assert c.post("/subscribe", data={"email": "fits@example.org", "pad": "x" * 1000}).status_code == 200
        assert c.post("/subscribe", data={"email": "big@example.org", "pad": "x" * 3000}).status_code == 413
    assert get(cfg, "big@example.org") is None


# --- repeated wrong tokens are slowed down (item 12) -------------------------------------------


def test_after_too_many_wrong_tokens_even_the_right_one_waits(make_settings):
    cfg = make_settings(admin_token=TOKEN, admin_auth_failure_limit="3/minute", trust_proxy_headers=True)
    with TestClient(create_app(cfg)) as c:
        def status(client_ip: str, headers: dict[str, str]):
            return c.get(f"/admin/issues/{DAY}", headers={**headers, "X-Forwarded-For": client_ip})

        for _ in range(5):  # no token at all guesses nothing, and is not counted
            assert status("203.0.113.9", {}).status_code == 401
        for _ in range(3):
            assert status("203.0.113.9", {"Authorization": "Bearer guess"}).status_code == 401
        blocked = status("203.0.113.9", AUTH)
        assert blocked.status_code == 429 and 1 <= int(blocked.headers["Retry-After"]) <= 60
        assert blocked.headers["content-type"] == "application/json"
        # Another client is not held up: it reaches the route (which has no such issue).
        other = status("198.51.100.1", AUTH)
        assert other.status_code == 404 and "error" in other.json()


def test_wrong_tokens_are_counted_per_ipv6_64(make_settings):
    cfg = make_settings(admin_token=TOKEN, admin_auth_failure_limit="3/minute", trust_proxy_headers=True)
    with TestClient(create_app(cfg)) as c:
        def status(client_ip: str, headers: dict[str, str]) -> int:
            return c.get(f"/admin/issues/{DAY}", headers={**headers, "X-Forwarded-For": client_ip}).status_code

        for suffix in ("1", "2", "3"):  # three addresses of one /64: one client
            assert status(f"2001:db8:7:7::{suffix}", {"Authorization": "Bearer guess"}) == 401
        assert status("2001:db8:7:7:abcd::1", AUTH) == 429
        assert status("2001:db8:7:8::1", AUTH) == 404  # the next /64 is someone else


# --- the subscribe limit counts IPv6 per /64 (item 16) -----------------------------------------


def test_the_subscribe_limit_counts_an_ipv6_64_as_one_client(make_settings):
    cfg = make_settings(subscribe_rate_limit="1/minute", trust_proxy_headers=True)
    with TestClient(create_app(cfg, send_confirmation=Recorder(cfg))) as c:
        def post(email: str, client_ip: str) -> int:
            return c.post("/subscribe", data={"email": email}, headers={"X-Forwarded-For": client_ip}).status_code

        assert post("a@example.org", "2001:db8:5:6::1") == 200
        assert post("b@example.org", "2001:db8:5:6:ffff::2") == 429  # same /64
        assert post("c@example.org", "2001:db8:5:7::1") == 200  # the next /64
        assert post("d@example.org", "::ffff:192.0.2.44") == 200
        assert post("e@example.org", "192.0.2.44") == 429  # the same IPv4 client, mapped or not
        assert post("f@example.org", "192.0.2.45") == 200  # IPv4 is counted per address


# --- the schema is not served in production (item 13) ------------------------------------------


def test_openapi_is_off_in_production_unless_turned_on(make_settings):
    production = {"environment": "production", "secret_key": STRONG_SECRET, "admin_token": STRONG_SECRET[::-1]}
    with TestClient(create_app(make_settings(**production))) as c:
        assert c.get("/openapi.json").status_code == 404
    with TestClient(create_app(make_settings(**production, openapi_enabled=True))) as c:
        assert "/admin/issues/{day}/resend" in c.get("/openapi.json").json()["paths"]
    for environment in ("development", "test"):
        with TestClient(create_app(make_settings(environment=environment))) as c:
            assert c.get("/openapi.json").status_code == 200, environment


# --- HEAD and Allow (item 14) ------------------------------------------------------------------


def test_head_answers_as_get_without_the_body(client, cfg):
    sub = add(cfg, "head@example.org", SubscriberStatus.pending)
    paths = ["/", "/issues", "/healthz", "/issues/2025-03-22", "/issues/2025-03-22/weekly", "/u/not-a-token",
             f"/u/{token(cfg, Purpose.unsubscribe, sub.uid)}", f"/p/{token(cfg, Purpose.preferences, sub.uid)}",
             f"/confirm/{token(cfg, Purpose.confirm, sub.uid)}"]
    for path in paths:
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code, path  # RFC 9110 §9.3.2
        assert dict(head.headers) == dict(got.headers), path
        assert head.content == b"" and got.content, path
    got, head = client.get(f"/admin/issues/{DAY}", headers=AUTH), client.head(f"/admin/issues/{DAY}", headers=AUTH)
    assert (head.status_code, dict(head.headers), head.content) == (got.status_code, dict(got.headers), b"")


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/u/x", "GET, HEAD, POST"),  # GET /u/{token} and POST /u/{token} are two routes
    ("PATCH", "/p/x", "GET, HEAD, POST"),
    ("DELETE", "/confirm/x", "GET, HEAD, POST"),
    ("PUT", "/subscribe", "POST"),
    ("HEAD", "/subscribe", "POST"),
    ("DELETE", "/issues", "GET, HEAD"),
    ("PUT", "/u/x/resubscribe", "POST"),
])
def test_a_405_lists_every_method_the_path_accepts(client, method, path, allow):
    r = client.request(method, path)
    assert r.status_code == 405 and r.headers["allow"] == allow
    assert r.headers["content-type"].startswith("text/html")


def test_a_405_from_the_admin_api_is_json_with_allow(client):
    r = client.put(f"/admin/issues/{DAY}", headers=AUTH)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert r.headers["content-type"] == "application/json"


# --- admin validation errors are FastAPI's JSON 422 (item 15) ----------------------------------


@pytest.mark.parametrize(("method", "path", "body", "where"), [
    ("GET", f"/admin/issues/{DAY[:7]}", None, ["path", "day"]),
    ("POST", f"/admin/issues/{DAY}/resend", b'{"scope": "everyone", "reason": "x"}', ["body", "scope"]),
    ("POST", f"/admin/issues/{DAY}/resend", b"{not json", ["body", 1]),
    ("GET", f"/admin/issues/{DAY}?edition=monthly", None, ["query", "edition"]),
])
def test_admin_validation_errors_are_json_422(client, method, path, body, where):
    r = client.request(method, path, content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"
    detail = r.json()["detail"]
    assert detail[0]["loc"] == where and {"msg", "type"} <= set(detail[0])


def test_the_site_still_answers_a_malformed_form_with_its_400_page(client):
    r = client.post("/subscribe", content=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
