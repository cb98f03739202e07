"""`papermail preview --png`: the issue's HTML and its screenshots at 375 px and 1280 px, from the real Chromium."""

from __future__ import annotations

import struct

from tests.support.cli import papermail

DAY = "2025-03-21"


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


def built_issue(tmp_path):
    papermail(tmp_path, "ingest", "--source", "sample")
    papermail(tmp_path, "build", "--date", DAY)


def test_preview_writes_the_html_and_a_phone_and_a_desktop_screenshot(tmp_path):
    built_issue(tmp_path)
    done = papermail(tmp_path, "preview", "--date", DAY, "--out", "look/issue.html", "--png")
    html = (tmp_path / "look" / "issue.html").read_text()
    assert "pm-slot" not in html  # the placeholders are filled for the preview
    for width in (375, 1280):
        shot = tmp_path / "look" / f"issue-{width}.png"
        assert str(shot.relative_to(tmp_path)) in done.stdout
        w, h = png_size(shot)
        assert w == width and h > 1500  # the whole page, not the first screenful
    assert "wider than the screen" not in done.stdout


def test_without_chromium_it_says_so_in_one_line_and_keeps_the_html(tmp_path):
    built_issue(tmp_path)
    done = papermail(tmp_path, "preview", "--date", DAY, "--out", "issue.html", "--png",
                     env={"CHROMIUM": str(tmp_path / "no-such-browser")}, check=False)
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and "chromium" in done.stderr.lower()
    assert "Traceback" not in done.stderr and (tmp_path / "issue.html").exists()
