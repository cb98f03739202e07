"""Build the sample day's issue with the real pipeline and screenshot it at phone and desktop widths.

    [DIGEST_SIZE=25] .venv/bin/python scripts/screenshot_digest.py [OUT_DIR] [KEYWORD ...]
                                                            # default var/screenshots/, 10 papers

With keywords, the digest is the one a reader who named them as interests gets (their papers, why each is
there, and "Also trending" when fewer than three match), joined from the issue's blocks as dispatch does.

Writes digest.html, digest.txt and digest-{375,1280}[-dark].png for a human to
look at. The sample's papers come in through the Hugging Face ingest (the API
served from the recorded snapshots, as the tests do), so each card has its
thumbnail: drawn here from the paper's title, in the shape of the real social
thumbnails, since the snapshots hold only their addresses. Uses Debian's
chromium (never `playwright install`) with the flags that keep it off the
network (pipeline/compose/screenshots.py, as `papermail preview --png`).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import service  # noqa: E402
from pipeline.audience.interests import Interest, compile_interests  # noqa: E402
from pipeline.compose.blocks import Chosen, IssueBlocks  # noqa: E402
from pipeline.compose.render import RenderedIssue  # noqa: E402
from pipeline.compose.screenshots import Resources, screenshot  # noqa: E402
from pipeline.digest.personal import Candidates, select  # noqa: E402
from pipeline.digest.relevance import NEUTRAL  # noqa: E402
from pipeline.ingest import files  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from tests.support.papers_api import day_items, papers_api  # noqa: E402


def sample_issue(work: Path, keywords: list[str]) -> tuple[RenderedIssue, Resources]:
    """The real daily job's issue for the bundled sample day, built in a throwaway database (as a reader
    interested in ``keywords`` gets it, if any)."""
    cfg = Settings(_env_file=None, database_url=f"sqlite:///{work / 'screens.db'}", outbox_dir=work / "outbox",  # type: ignore[call-arg]
                   base_url="https://papers.example.org", mail_from="Trending ML Papers <digest@papers.example.org>",
                   digest_size=int(os.environ.get("DIGEST_SIZE", "10")))
    for snapshot in files.sample_files():
        client, _ = papers_api(day_items(snapshot))
        service.ingest(cfg, day=service.sample_day(), source="hf", client=client,
                       now=files.fetched_at_from_name(snapshot))
    issue, _ = service.build(cfg, day=service.sample_day())
    if not keywords:
        return RenderedIssue(subject=issue.subject, html=issue.html, text=issue.text), service.stored_images(cfg)
    interests = compile_interests([Interest.parse("keyword", k) for k in keywords])
    picks = select(Candidates(issue.items), interests=interests, model=NEUTRAL, mix=0.5, size=cfg.digest_size)
    selection = tuple(Chosen(p.index, p.matched, p.also_trending) for p in picks)
    subject, html, text = IssueBlocks.from_json(issue.blocks or {}).joined(selection)
    return RenderedIssue(subject=subject, html=html, text=text), service.stored_images(cfg)


def main(out_dir: Path, keywords: list[str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        issue, images = sample_issue(Path(work), keywords)
        html_file = out_dir / "digest.html"
        html_file.write_text(issue.html, encoding="utf-8")
        (out_dir / "digest.txt").write_text(issue.text, encoding="utf-8")
        print(f"HTML {len(issue.html.encode()) / 1024:.1f} KB -> {html_file}")
        for shot in screenshot(issue.html, out_dir / "digest", schemes=("light", "dark"), resources=images):
            print(f"{shot.path} (horizontal overflow: {shot.overflow} px)")

if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "var" / "screenshots", sys.argv[2:])
