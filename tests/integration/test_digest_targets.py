"""Every link and button of the digest is at least 24 × 24 CSS px on a 375 px phone (WCAG 2.2, 2.5.8 target
size), measured in headless Chromium on the rendered mail."""

from __future__ import annotations

from pipeline.compose.render import render_digest
from tests.integration.test_browser_flow import browser  # noqa: F401 - the fixture
from tests.unit.test_render import CTX, sample_items

MIN_TARGET = 24


def small_targets(browser, html: str, width: int) -> list[str]:  # noqa: F811
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.set_content(html)
    boxes = page.evaluate("""() => [...document.querySelectorAll('a[href]')].map(a => {
        const r = a.getBoundingClientRect();
        return [a.textContent.trim().slice(0, 40), r.width, r.height];
    })""")
    page.close()
    assert boxes, "no links found"
    return [f"{text!r} {w:.0f}×{h:.0f}" for text, w, h in boxes if w < MIN_TARGET or h < MIN_TARGET]


def test_every_link_is_a_big_enough_target_on_a_phone(browser):  # noqa: F811
    html = render_digest(sample_items(25), ctx=CTX).html
    assert small_targets(browser, html, 375) == []


def test_the_confirmation_mails_button_and_links_are_big_enough(browser):  # noqa: F811
    from pipeline.compose.render import render_confirmation

    html = render_confirmation(list_name="Trending ML Papers", confirm_url="https://papers.example.org/c/tok",
                               list_address="digest@papers.example.org", expiry_days=7).html
    assert small_targets(browser, html, 375) == []
