"""Render the 10-paper sample digest and screenshot it at phone and desktop widths.

    .venv/bin/python scripts/screenshot_digest.py [OUT_DIR]   # default var/screenshots/

Writes digest.html, digest.txt, digest-375.png and digest-1280.png for a human
to look at. Uses Debian's chromium (never `playwright install`) with the
network-quiet flags from REFERENCE.md §9.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.render import DigestContext, render_digest  # noqa: E402

SAMPLE = ROOT / "pipeline" / "data" / "hf_daily_papers_2025-03-21_1800Z.json"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def sample_items(n: int = 10) -> list[dict]:
    """The top ``n`` papers of the sample day by upvotes, shaped like frozen ranking output."""
    entries = sorted(json.loads(SAMPLE.read_text()), key=lambda e: -e["paper"]["upvotes"])[:n]
    items = []
    for rank, entry in enumerate(entries, 1):
        paper, aid = entry["paper"], entry["paper"]["id"]
        stars = paper.get("githubStars")
        why = f"+{paper['upvotes']} upvotes in the last 12 h"
        items.append(
            {
                "rank": rank,
                "arxiv_id": aid,
                "title": entry["title"],
                "authors": [a["name"] for a in paper["authors"]],
                "summary": entry["summary"],
                "url": f"https://huggingface.co/papers/{aid}",
                "abs_url": f"https://arxiv.org/abs/{aid}",
                "github_repo": paper.get("githubRepo"),
                # The sample has no project pages; give the first paper one so the layout shows it.
                "project_page": f"https://example.org/projects/{aid}" if rank == 1 else None,
                "upvotes": paper["upvotes"],
                "comments": entry["numComments"],
                "github_stars": stars,
                "score": float(paper["upvotes"]),
                "why": why + (f" · {stars} GitHub stars" if stars is not None else ""),
            }
        )
    return items


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    base = "https://papers.example.org"
    ctx = DigestContext(
        list_name="Trending ML Papers",
        issue_date=dt.date(2025, 3, 21),
        archive_url=f"{base}/issues/2025-03-21",
        site_url=base,
        list_address="digest@papers.example.org",
    )
    issue = render_digest(sample_items(), ctx=ctx)
    html_file = out_dir / "digest.html"
    html_file.write_text(issue.html, encoding="utf-8")
    (out_dir / "digest.txt").write_text(issue.text, encoding="utf-8")
    print(f"HTML {len(issue.html.encode()) / 1024:.1f} KB -> {html_file}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for width in (375, 1280):
                page = browser.new_page(viewport={"width": width, "height": 800})
                page.set_content(issue.html, wait_until="load")
                png = out_dir / f"digest-{width}.png"
                page.screenshot(path=str(png), full_page=True)
                overflow = page.evaluate("document.documentElement.scrollWidth") - width
                print(f"{png} (horizontal overflow: {max(overflow, 0)} px)")
                page.close()
        finally:
            browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "var" / "screenshots")
