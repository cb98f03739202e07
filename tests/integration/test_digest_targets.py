"""Every link and button of the digest is at least 24 × 24 CSS px on a 375 px phone (WCAG 2.2, 2.5.8 target
size), and its text is legible in light, dark and forced dark mode, measured in headless Chromium on the
rendered mail."""

from __future__ import annotations

import dataclasses
import io

from PIL import Image

from pipeline.compose.render import render_digest
from tests.support.papers_api import thumbnail_png
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


def _pixel_luminance(rgb: tuple[int, ...]) -> float:
    return _luminance(f"rgb({rgb[0]}, {rgb[1]}, {rgb[2]})")


def ink_contrast(png: bytes) -> tuple[float, float]:
    """(background luminance, contrast of the ink against it) in a screenshot of one piece of text: the
    background is its most common colour, the ink the pixel that stands out from it most."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=image.width * image.height)
    assert colours
    background = _pixel_luminance(max(colours)[1])
    ink = max((abs(_pixel_luminance(c) - background), _pixel_luminance(c)) for _, c in colours)[1]
    light, dark = sorted((background, ink), reverse=True)
    return background, (light + 0.05) / (dark + 0.05)


TEXTS = {"title": "[id=p1] .t a", "authors": "[id=p1] .au", "summary": "[id=p1] .sm", "figures": "[id=p1] .fg span",
         "link": "[id=p1] .fg a", "why": "[id=p1] .why", "header": "div[style*='font-size:22px']",
         "footer": ".ft"}


def test_under_forced_dark_mode_the_text_stays_legible_and_the_thumbnails_keep_their_colours(forced_dark_browser):
    html = render_digest(sample_items(3, thumbnails=True), ctx=dataclasses.replace(CTX, images="proxied")).html
    thumbnail = thumbnail_png("A paper's thumbnail")
    page = forced_dark_browser.new_page(viewport={"width": 375, "height": 800}, color_scheme="light")
    page.route("**/*", lambda route: route.fulfill(body=thumbnail, content_type="image/png")
               if "/images/" in route.request.url else route.abort())
    page.set_content(html, wait_until="load")
    found = {}
    for part, selector in TEXTS.items():
        found[part] = ink_contrast(page.locator(selector).first.screenshot())
    card_background = ink_contrast(page.locator("[id=p1]").screenshot())[0]
    shown = Image.open(io.BytesIO(page.locator("[id=p1] img.im").screenshot())).convert("RGB")
    page.close()
    assert card_background < 0.1, "the cards were not darkened: the check would prove nothing"
    for part, (_, contrast) in found.items():
        assert contrast >= 4.5, (part, round(contrast, 2))  # WCAG AA for body text, after the inversion
    sent = Image.open(io.BytesIO(thumbnail)).convert("RGB")
    middle = (sent.width // 2, sent.height - 20)
    shown_middle = (shown.width // 2, shown.height - 10)
    assert _pixel_luminance(shown.getpixel(shown_middle)) > 0.6 < _pixel_luminance(sent.getpixel(middle))
