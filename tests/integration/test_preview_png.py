"""`papermail preview --png`: the issue's HTML and its screenshots at 375 px and 1280 px, from the real Chromium."""

from __future__ import annotations

import struct

from PIL import Image

from pipeline import service
from pipeline.settings import Settings
from tests.support.cli import papermail
from tests.support.papers_api import THUMBNAIL_BAR, day_items, papers_api
from tests.support.paths import FIXTURES

DAY = "2025-03-21"


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


def built_issue(tmp_path):
    papermail(tmp_path, "ingest", "--source", "sample")
    papermail(tmp_path, "build", "--date", DAY)


def test_preview_writes_the_html_and_a_phone_and_a_desktop_screenshot_light_and_dark(tmp_path):
    built_issue(tmp_path)
    done = papermail(tmp_path, "preview", "--date", DAY, "--out", "look/issue.html", "--png")
    html = (tmp_path / "look" / "issue.html").read_text()
    assert "pm-slot" not in html  # the placeholders are filled for the preview
    for width in (375, 1280):
        light, dark = (tmp_path / "look" / f"issue-{width}{suffix}.png" for suffix in ("", "-dark"))
        for shot in (light, dark):
            assert str(shot.relative_to(tmp_path)) in done.stdout
            w, h = png_size(shot)
            assert w == width and h > 1500  # the whole page, not the first screenful
        corner = (5, 5)  # the page's background, outside the cards
        assert sum(Image.open(light).convert("RGB").getpixel(corner)) > 600
        assert sum(Image.open(dark).convert("RGB").getpixel(corner)) < 120
    assert "wider than the screen" not in done.stdout


def test_the_screenshots_show_the_stored_thumbnails(tmp_path):
    cfg = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'var' / 'papermail.db'}",  # type: ignore[call-arg]
                   outbox_dir=tmp_path / "var" / "outbox")
    (tmp_path / "var").mkdir()
    client, _ = papers_api(day_items(FIXTURES / "hf_daily_papers_2025-03-21_1800Z.json"))
    service.ingest(cfg, day=service.sample_day(), source="hf", client=client)
    papermail(tmp_path, "build", "--date", DAY)
    papermail(tmp_path, "preview", "--date", DAY, "--out", "issue.html", "--png")
    phone = Image.open(tmp_path / "issue-375.png").convert("RGB")
    band = {phone.getpixel((x, y)) for x in range(40, 330, 10) for y in range(150, 400)}
    # The drawn thumbnail's top bar (give or take JPEG): the picture loaded, not its alt text.
    assert any(max(abs(a - b) for a, b in zip(pixel, THUMBNAIL_BAR, strict=True)) < 12 for pixel in band)


def test_without_chromium_it_says_so_in_one_line_and_keeps_the_html(tmp_path):
    built_issue(tmp_path)
    done = papermail(tmp_path, "preview", "--date", DAY, "--out", "issue.html", "--png",
                     env={"CHROMIUM": str(tmp_path / "no-such-browser")}, check=False)
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and "chromium" in done.stderr.lower()
    assert "Traceback" not in done.stderr and (tmp_path / "issue.html").exists()
