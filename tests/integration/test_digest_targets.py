"""Every link and button of the digest is at least 24 × 24 CSS px on a 375 px phone (WCAG 2.2, 2.5.8 target
size), measured in headless Chromium on the rendered mail."""

from __future__ import annotations

from pipeline.compose.render import render_digest
from tests.unit.test_render import CTX, sample_items

MIN_TARGET = 24


def small_targets(browser, html: str, width: int) -> list[str]:
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.set_content(html)
    boxes = page.evaluate("""() => [...document.querySelectorAll('a[href]')].map(a => {
        const r = a.getBoundingClientRect();
        return [a.textContent.trim().slice(0, 40), r.width, r.height];
    })""")
    page.close()
    assert boxes, "no links found"
    return [f"{text!r} {w:.0f}×{h:.0f}" for text, w, h in boxes if w < MIN_TARGET or h < MIN_TARGET]


def test_every_link_is_a_big_enough_target_on_a_phone(browser):
    html = render_digest(sample_items(25), ctx=CTX).html
    assert small_targets(browser, html, 375) == []


def test_the_confirmation_mails_button_and_links_are_big_enough(browser):
    from pipeline.compose.render import render_confirmation

    html = render_confirmation(list_name="Trending ML Papers", confirm_url="https://papers.example.org/c/tok",
                               list_address="digest@papers.example.org", expiry_days=7).html
    assert small_targets(browser, html, 375) == []


def _luminance(rgb: str) -> float:
    """WCAG relative luminance of a computed CSS colour such as "rgb(30, 41, 59)"."""
    parts = [int(float(v)) / 255 for v in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3]]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in parts)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def card_colours(browser, html: str, scheme: str) -> dict[str, tuple[str, str]]:
    """(text colour, card background) of a card's title link, summary, figures and why line."""
    page = browser.new_page(viewport={"width": 375, "height": 800}, color_scheme=scheme)
    page.set_content(html)
    found = page.evaluate("""() => {
        const card = document.querySelector('[id=p1]');
        const bg = getComputedStyle(card).backgroundColor;
        const pick = (sel) => { const el = card.querySelector(sel); const s = getComputedStyle(el);
            const own = s.backgroundColor; return [s.color, own === 'rgba(0, 0, 0, 0)' ? bg : own]; };
        return {title: pick('.t a'), summary: pick('.sm'), figures: pick('.fg'), why: pick('.why'),
                page: [getComputedStyle(document.body).backgroundColor, bg]};
    }""")
    page.close()
    return {k: tuple(v) for k, v in found.items()}


def test_dark_mode_gives_dark_cards_with_legible_text(browser):
    html = render_digest(sample_items(3), ctx=CTX).html
    light, dark = card_colours(browser, html, "light"), card_colours(browser, html, "dark")
    assert _luminance(light["page"][1]) > 0.9 and _luminance(dark["page"][1]) < 0.05  # white cards, then dark ones
    assert _luminance(dark["page"][0]) < 0.05
    for scheme in (light, dark):
        for part in ("title", "summary", "figures", "why"):
            fg, bg = scheme[part]
            assert _contrast(fg, bg) >= 4.5, (part, fg, bg)  # WCAG AA for body text
