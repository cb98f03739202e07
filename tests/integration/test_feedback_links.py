"""Each card of a sent digest carries its reader's own "more / less like this" links: the issue is rendered
once, and the links are filled in per reader as bytes, in both parts."""

from __future__ import annotations

import email
import email.policy
import re
from urllib.parse import parse_qs, urlsplit

from sqlmodel import Session, select

from pipeline import service
from pipeline.audience.tokens import Purpose, Signer
from pipeline.models import Issue, Subscriber
from tests.support.sending import DAY, prepare, send_all

FEEDBACK = re.compile(r"https://papers\.example\.org/f/[^\s\"'<>?]+\?paper=[^\s\"'<>&]+&(?:amp;)?vote=(?:more|less)")


def test_every_reader_gets_their_own_feedback_links_for_each_paper(make_settings):
    cfg = make_settings()
    prepare(cfg, n=2)
    send_all(cfg)
    signer = Signer(cfg.secret_key, Purpose.feedback)
    with Session(service.engine(cfg)) as session:
        uids = {s.email: s.uid for s in session.exec(select(Subscriber))}
        issue = session.exec(select(Issue)).one()
        shown = [item["arxiv_id"] for item in issue.items[:issue.size]]
    readers = set()
    for eml in sorted((cfg.outbox_dir / DAY.isoformat()).glob("*.eml")):
        raw = eml.read_bytes()
        assert b"pm-slot" not in raw
        message = email.message_from_bytes(raw, policy=email.policy.default)
        reader = message["To"]
        for part in ("plain", "html"):
            body = message.get_body((part,)).get_content()
            links = [urlsplit(link.replace("&amp;", "&")) for link in FEEDBACK.findall(body)]
            assert len(links) == 2 * len(shown), part
            tokens = {link.path.removeprefix("/f/") for link in links}
            assert [signer.unsign(token) for token in tokens] == [uids[reader]]  # theirs, and only theirs
            votes = [(parse_qs(link.query)["paper"][0], parse_qs(link.query)["vote"][0]) for link in links]
            assert votes == [(paper, vote) for paper in shown for vote in ("more", "less")]
        readers.add(reader)
    assert readers == set(uids)


def test_a_link_from_the_mail_opens_its_page_and_its_button_records_the_vote(make_settings):
    from fastapi.testclient import TestClient

    from pipeline.models import Vote
    from pipeline.web.app import create_app

    cfg = make_settings()
    prepare(cfg, n=1)
    send_all(cfg)
    (eml,) = (cfg.outbox_dir / DAY.isoformat()).glob("*.eml")
    html = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default).get_body(("html",)).get_content()
    first = urlsplit(FEEDBACK.findall(html)[0].replace("&amp;", "&"))
    query = {k: v[0] for k, v in parse_qs(first.query).items()}
    with TestClient(create_app(cfg)) as site:
        page = site.get(first.path, params=query)
        assert page.status_code == 200 and page.text.count("<button") == 1
        with Session(service.engine(cfg)) as session:
            assert session.exec(select(Vote)).all() == []  # opening the link changed nothing
        assert site.post(first.path, data=query).status_code == 200
    with Session(service.engine(cfg)) as session:
        (vote,) = session.exec(select(Vote)).all()
    assert (vote.arxiv_id, vote.value) == (query["paper"], 1 if query["vote"] == "more" else -1)
