"""Every mail scores at most 1.0 with SpamAssassin's local tests: the sample day's digests at the smallest,
the default and the largest size a subscriber can choose, a day of adversarial papers, and the
confirmation mail."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json

import pytest
from sqlmodel import Session, select

from pipeline import service
from pipeline.models import Subscriber
from pipeline.service.confirmations import confirmation_message
from tests.support.papers_api import day_items, papers_api
from tests.support.paths import FIXTURES
from tests.support.sending import DAY, prepare, send_all, subscribe
from tests.support.spam import spam_report

LIMIT = 1.0
OPENING = "Training large models costs a great deal of compute."
LONG_WORDS = ("we propose efficient training through structured sparsity patterns across transformer layers "
              "without sacrificing downstream performance benchmarks whatsoever")


def adversarial_day(path, day: dt.date, n: int = 25) -> None:
    """A day in the Hugging Face format whose every field is at its worst: 200-character titles, long abstracts
    made of long lowercase words, every link, many authors."""
    stamp = f"{day}T08:00:00.000Z"
    records = []
    for i in range(n):
        records.append({
            "paper": {
                "id": f"2503.{90000 + i}", "title": ("Scaling " + "Extraordinarily Comprehensive Architectures " * 6)[:200],
                "summary": " ".join([OPENING] + [LONG_WORDS + "."] * 6), "upvotes": 300 - i, "publishedAt": stamp,
                "submittedOnDailyAt": stamp, "discussionId": f"d{i}", "githubStars": 1000 + i,
                "githubRepo": f"https://github.com/example/repo-{i}", "projectPage": f"https://example.org/p/{i}",
                "authors": [{"name": f"Author Number{j} Longname"} for j in range(12)],
            },
            "publishedAt": stamp, "title": "x", "summary": "x", "numComments": 40 - i,
            "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2503.{90000 + i}.png",
            "submittedBy": {"name": "someone"}, "isAuthorParticipating": False,
        })
    path.write_text(json.dumps(records))


def digest_eml(cfg) -> bytes:
    send_all(cfg)
    (eml,) = sorted((cfg.outbox_dir / DAY.isoformat()).glob("*.eml"))
    return eml.read_bytes()


def assert_clean(message: bytes) -> None:
    score, rules = spam_report(message)
    assert score <= LIMIT, f"SpamAssassin score {score}: {rules}"


@pytest.mark.parametrize("size", [5, 10, 25])
def test_the_sample_days_digest_scores_low(make_settings, size):
    cfg = make_settings(digest_size=size)
    prepare(cfg, n=1)
    assert_clean(digest_eml(cfg))


@pytest.mark.parametrize("images", ["proxied", "remote"])
@pytest.mark.parametrize("size", [10, 25])
def test_with_a_thumbnail_on_every_card_the_digest_scores_low(make_settings, size, images):
    cfg = make_settings(digest_size=size, images=images)
    for snapshot in ("hf_daily_papers_2025-03-21_0600Z.json", "hf_daily_papers_2025-03-21_1800Z.json"):
        client, _ = papers_api(day_items(FIXTURES / snapshot))
        service.ingest(cfg, day=DAY, source="hf", client=client)
    subscribe(cfg, ["reader@example.org"])
    issue, _ = service.build(cfg, day=DAY)
    assert issue.html.count('<img class="im"') == size
    assert_clean(digest_eml(cfg))


def test_a_day_of_adversarial_papers_scores_low(make_settings, tmp_path):
    cfg = make_settings(digest_size=25)
    day_file = tmp_path / "day.json"
    adversarial_day(day_file, DAY)
    service.ingest(cfg, day=DAY, source=f"file:{day_file}")
    subscribe(cfg, ["reader@example.org"])
    service.build(cfg, day=DAY)
    message = digest_eml(cfg)
    parts = [p.get_content() for p in email.message_from_bytes(message, policy=email.policy.default).iter_parts()]
    for content in parts:  # each snippet is cut before the run of long words, in both parts
        assert OPENING in " ".join(content.split()) and "structured sparsity" not in content
    assert_clean(message)


def test_the_confirmation_mail_scores_low(make_settings):
    cfg = make_settings()
    subscribe(cfg, ["new@example.org"], confirmed=False)
    with Session(service.engine(cfg)) as session:
        uid = session.exec(select(Subscriber.uid)).one()
    assert_clean(confirmation_message(cfg, email="new@example.org", uid=uid))
