"""A person in a real browser (Debian's Chromium): subscribe, confirm from the mail, get a digest,
change preferences, unsubscribe; vote on a paper, add and remove interests, clear the votes.

Screenshots of every page at 375 px and 1280 px go to test-artifacts/browser/.
"""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
import uvicorn
from sqlmodel import Session, select

from pipeline import service
from pipeline.audience.tokens import Purpose
from pipeline.models import Subscriber, SubscriberStatus
from pipeline.web import create_app
from tests.support.paths import ROOT
from tests.support.services import free_port, wait_until
from tests.support.smtp import SMTPScript
from tests.support.web import add, add_paper, get, token, votes

ARTIFACTS = ROOT / "test-artifacts" / "browser"
DAY = dt.date(2025, 3, 21)


def serve(make_settings, **values):  # noqa: ANN001, ANN003, ANN201
    """The real web app under uvicorn on a free port; yields its settings."""
    port = free_port()
    cfg = make_settings(base_url=f"http://127.0.0.1:{port}", **values)
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "the web server to start", timeout=20)
    yield cfg
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def site(make_settings, smtp_server):
    """The site, mailing through the real SMTP server."""
    _, smtp_url = smtp_server
    yield from serve(make_settings, smtp_url=smtp_url)


@pytest.fixture
def quiet_site(make_settings):
    """The site, mailing nothing that matters here (the outbox)."""
    yield from serve(make_settings)


def shoot(browser, url: str, name: str) -> None:
    """The page as a phone and a desktop show it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in (375, 1280):
        page = browser.new_page(viewport={"width": width, "height": 800})
        page.goto(url)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth") - width
        assert overflow <= 0, f"{name} overflows {width} px by {overflow} px"
        page.close()


# The smtp_script fixture is parametrized for the SMTP tests; one server flavour is enough here.
@pytest.mark.parametrize("smtp_script", [SMTPScript()], ids=["smtp"])
def test_subscribe_confirm_receive_and_unsubscribe_in_a_real_browser(site, browser, smtp_server, smtp_script):
    handler, _ = smtp_server
    cfg = site
    page = browser.new_page(viewport={"width": 375, "height": 800})

    # 1. The landing page: subscribe.
    page.goto(cfg.base_url + "/")
    shoot(browser, cfg.base_url + "/", "1-landing")
    page.fill("input[name=email]", "reader@example.org")
    page.locator("form[action='/subscribe'] [type=submit]").click()
    page.wait_for_load_state()
    assert "Check your inbox" in page.content()
    page.screenshot(path=str(ARTIFACTS / "2-check-inbox-375.png"), full_page=True)

    # 2. The confirmation mail, from the real SMTP server; its link opens a page with a button.
    mail = wait_until(lambda: [m for m in handler.messages if m.rcpt == ["reader@example.org"]], "the confirmation mail")
    text = mail[0].message.get_body(("plain",)).get_content()
    confirm_url = re.search(r"http://127\.0\.0\.1:\d+/confirm/\S+", text).group(0)
    page.goto(confirm_url)
    shoot(browser, confirm_url, "3-confirm")
    with Session(service.engine(cfg)) as session:  # opening the link changed nothing
        assert session.exec(select(Subscriber.status)).one() == SubscriberStatus.pending
    page.get_by_role("button", name=re.compile("Confirm", re.I)).click()
    page.wait_for_load_state()
    assert "subscribed" in page.content()
    with Session(service.engine(cfg)) as session:
        assert session.exec(select(Subscriber.status)).one() == SubscriberStatus.active

    # 3. A digest goes out to the confirmed subscriber.
    service.ingest(cfg, day=DAY, source="sample")
    service.build(cfg, day=DAY)
    issue_id, batches = service.start_sending(cfg, day=DAY)
    for a, b in batches:
        service.send_range(cfg, issue_id=issue_id, after_id=a, upto_id=b)
    digest = wait_until(lambda: [m for m in handler.messages if "Trending ML Papers —" in (m.message["Subject"] or "")],
                        "the digest")[0].message
    unsubscribe_url = digest["List-Unsubscribe"].split(",")[0].strip()[1:-1]
    assert unsubscribe_url.startswith(cfg.base_url + "/u/")
    html = digest.get_body(("html",)).get_content()
    assert f'href="{unsubscribe_url}"' in html  # the visible link in the body is the same

    # 4. The preferences link in the digest: weekly on Mondays, five papers.
    preferences_url = re.search(r'href="(http://127\.0\.0\.1:\d+/p/[^"]+)"', html).group(1)
    page.goto(preferences_url)
    page.check("input[name=frequency][value=weekly]")
    page.select_option("select[name=weekday]", "0")
    page.fill("input[name=digest_size]", "5")
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    assert "Saved" in page.content()
    shoot(browser, preferences_url, "4-preferences")
    with Session(service.engine(cfg)) as session:
        sub = session.exec(select(Subscriber)).one()
        assert (sub.frequency.value, sub.weekday, sub.digest_size) == ("weekly", 0, 5)

    # 5. The unsubscribe link: a page with one button; pressing it unsubscribes.
    page.goto(unsubscribe_url)
    shoot(browser, unsubscribe_url, "5-unsubscribe")
    with Session(service.engine(cfg)) as session:
        assert session.exec(select(Subscriber.status)).one() == SubscriberStatus.active
    page.get_by_role("button", name=re.compile("^Unsubscribe$", re.I)).click()
    page.wait_for_load_state()
    assert "unsubscribed" in page.content().lower()
    page.screenshot(path=str(ARTIFACTS / "6-unsubscribed-375.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.screenshot(path=str(ARTIFACTS / "6-unsubscribed-1280.png"), full_page=True)
    with Session(service.engine(cfg)) as session:
        assert session.exec(select(Subscriber.status)).one() == SubscriberStatus.unsubscribed
    page.close()


def assert_targets_are_big_enough(page) -> None:
    """WCAG 2.2 target size (2.5.8): every button, field and choice at least 24 x 24 CSS px."""
    small = page.evaluate("""() => [...document.querySelectorAll(
        'button, select, input[type=text], input[type=number], input[type=email], label.choice')]
        .map(e => [e.outerHTML.slice(0, 80), e.getBoundingClientRect()])
        .filter(([, r]) => r.width < 24 || r.height < 24).map(([html]) => html)""")
    assert small == [], small


def test_vote_on_a_paper_and_choose_interests_in_a_real_browser(quiet_site, browser):
    cfg = quiet_site
    add_paper(cfg, "2503.16428", "Scaling Diffusion Transformers for Video Generation at Every Size Imaginable")
    reader = add(cfg, "reader@example.org")
    page = browser.new_page(viewport={"width": 375, "height": 800})

    # 1. A card's "More like this" link: a page with one button; opening it records nothing.
    feedback_url = f"{cfg.base_url}/f/{token(cfg, Purpose.feedback, reader.uid)}?paper=2503.16428&vote=more"
    page.goto(feedback_url)
    shoot(browser, feedback_url, "7-feedback")
    assert votes(cfg) == []
    assert_targets_are_big_enough(page)
    page.get_by_role("button", name="More like this").click()
    page.wait_for_load_state()
    assert "Thanks, noted" in page.content()
    page.screenshot(path=str(ARTIFACTS / "8-feedback-saved-375.png"), full_page=True)
    assert [(v["arxiv_id"], v["value"]) for v in votes(cfg)] == [("2503.16428", 1)]

    # 2. From there to the preferences page: a category that is not one is refused, what was typed kept.
    page.get_by_role("link", name="Your preferences").click()
    page.wait_for_load_state()
    assert "Scaling Diffusion Transformers" in page.locator("#votes").inner_text()
    page.select_option("#interest-kind", "category")
    page.fill("#interest-value", "cs.ML")
    page.get_by_label("Exclude").check()
    page.get_by_role("button", name="Add", exact=True).click()
    page.wait_for_load_state()
    assert "not an arXiv category like cs.LG" in page.locator("#interests [role=alert]").inner_text()
    assert page.input_value("#interest-value") == "cs.ML" and page.is_checked("input[name=mode][value=exclude]")
    assert page.input_value("#interest-kind") == "category"
    page.locator("#interests").screenshot(path=str(ARTIFACTS / "9-interest-refused-375.png"))
    assert get(cfg, "reader@example.org").topics == []

    # 3. Corrected, it is added; a keyword too; both listed, each with its own Remove button.
    page.fill("#interest-value", "cs.LG")
    page.get_by_role("button", name="Add", exact=True).click()
    page.wait_for_load_state()
    page.select_option("#interest-kind", "keyword")
    page.fill("#interest-value", "diffusion models")
    page.get_by_label("Include").check()
    page.get_by_role("button", name="Add", exact=True).click()
    page.wait_for_load_state()
    assert get(cfg, "reader@example.org").topics == [{"kind": "category", "value": "cs.LG", "mode": "exclude"},
                                                      {"kind": "keyword", "value": "diffusion models",
                                                       "mode": "include"}]
    preferences_url = f"{cfg.base_url}/p/{token(cfg, Purpose.preferences, reader.uid)}"
    shoot(browser, preferences_url, "9-interests")
    assert_targets_are_big_enough(page)
    page.get_by_role("button", name="Remove cs.LG (arXiv category)").click()
    page.wait_for_load_state()
    assert get(cfg, "reader@example.org").topics == [{"kind": "keyword", "value": "diffusion models",
                                                      "mode": "include"}]

    # 4. The votes, cleared.
    page.get_by_role("button", name="Clear all votes").click()
    page.wait_for_load_state()
    assert "Cleared 1 vote." in page.content() and votes(cfg) == []
    page.close()
