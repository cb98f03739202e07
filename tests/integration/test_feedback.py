"""The "More like this" / "Less like this" pages, on SQLite and PostgreSQL: a GET changes nothing, the POST
records one vote per reader and paper, and a bad token or bad fields record nothing."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlmodel import Session, select

from pipeline import service
from pipeline.audience.subscribers import remove_subscribers
from pipeline.audience.tokens import Purpose, Signer
from pipeline.models import SubscriberStatus, Vote
from tests.support.web import GENERIC_BAD_LINK, add, add_paper, get, snapshot, token, votes

PAPER = "2503.16428"
TITLE = "Scaling <Diffusion> Transformers"
INCOMPLETE = "This feedback link is incomplete"


@pytest.fixture
def reader(cfg):
    add_paper(cfg, PAPER, TITLE)
    return add(cfg, "reader@example.org")


def link(cfg, uid: str) -> str:
    return f"/f/{token(cfg, Purpose.feedback, uid)}"


def state(cfg) -> tuple[list, list]:
    return snapshot(cfg), votes(cfg)


def test_the_link_shows_the_paper_and_one_button_and_changes_nothing(client, cfg, reader):
    path = link(cfg, reader.uid)
    before = state(cfg)
    for vote, words in (("more", "More like this"), ("less", "Less like this")):
        r = client.get(path, params={"paper": PAPER + "v2", "vote": vote})
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert "Scaling &lt;Diffusion&gt; Transformers" in r.text and "<Diffusion>" not in r.text
        assert r.text.count("<button") == 1
        form = re.search(rf'<form method="post" action="{re.escape(path)}">(.*?)</form>', r.text, re.S)
        assert form, "one form, posting to the same link"
        assert f'<input type="hidden" name="paper" value="{PAPER}">' in form.group(1)  # the version dropped
        assert f'<input type="hidden" name="vote" value="{vote}">' in form.group(1)
        assert f"{words}</button>" in form.group(1)
        assert f'href="/p/{token(cfg, Purpose.preferences, reader.uid)}"' in r.text
        assert client.head(path, params={"paper": PAPER, "vote": vote}).status_code == 200
        assert state(cfg) == before


def test_the_button_records_the_vote_and_a_second_replaces_the_first(client, cfg, reader):
    path = link(cfg, reader.uid)
    r = client.post(path, data={"paper": PAPER, "vote": "more"})
    assert r.status_code == 200 and "Thanks, noted" in r.text and "more papers like" in r.text
    assert f'href="/p/{token(cfg, Purpose.preferences, reader.uid)}"' in r.text
    assert '<input type="hidden" name="vote" value="less">' in r.text  # changing one's mind is one more button
    [first] = votes(cfg)
    assert (first["subscriber_id"], first["arxiv_id"], first["value"]) == (reader.id, PAPER, 1)

    again = client.get(path, params={"paper": PAPER, "vote": "less"})
    assert "You said “more like this”" in again.text and votes(cfg) == [first]

    r = client.post(path, data={"paper": PAPER + "v3", "vote": "less"})
    assert r.status_code == 200 and "fewer papers like" in r.text
    [second] = votes(cfg)
    assert (second["id"], second["value"]) == (first["id"], -1) and second["voted_at"] >= first["voted_at"]
    assert client.post(path, files={"paper": (None, PAPER), "vote": (None, "less")}).status_code == 200
    assert len(votes(cfg)) == 1


def test_votes_are_per_reader_and_per_paper(client, cfg, reader):
    other = add(cfg, "other@example.org")
    add_paper(cfg, "hep-th/9901001", "An old one")
    client.post(link(cfg, reader.uid), data={"paper": PAPER, "vote": "more"})
    client.post(link(cfg, reader.uid), data={"paper": "hep-th/9901001", "vote": "less"})
    client.post(link(cfg, other.uid), data={"paper": PAPER, "vote": "less"})
    assert sorted((v["subscriber_id"], v["arxiv_id"], v["value"]) for v in votes(cfg)) == sorted(
        [(reader.id, PAPER, 1), (reader.id, "hep-th/9901001", -1), (other.id, PAPER, -1)])


def test_a_bad_token_gets_the_generic_page_and_records_nothing(client, cfg, reader):
    good = token(cfg, Purpose.feedback, reader.uid)
    bad = {
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "preferences token": token(cfg, Purpose.preferences, reader.uid),
        "unsubscribe token": token(cfg, Purpose.unsubscribe, reader.uid),
        "other secret": Signer("another-secret-entirely-0123456789", Purpose.feedback).sign(reader.uid),
        "unknown uid": token(cfg, Purpose.feedback, "no-such-uid"),
        "garbage": "not-a-token",
    }
    before = state(cfg)
    pages = set()
    for kind, value in bad.items():
        for r in (client.get(f"/f/{value}", params={"paper": PAPER, "vote": "more"}),
                  client.post(f"/f/{value}", data={"paper": PAPER, "vote": "more"})):
            assert r.status_code == 400 and GENERIC_BAD_LINK in r.text, kind
            assert TITLE not in r.text and "Scaling" not in r.text, kind
            pages.add(r.text)
    assert len(pages) == 1
    assert state(cfg) == before


@pytest.mark.parametrize(("paper", "vote"), [
    (None, "more"), (PAPER, None), (None, None), ("", "more"),
    ("not-an-id", "more"), ("2513.16428", "more"), ("2503.16428v0", "more"), ("2503.16428 OR 1=1", "less"),
    ("9" * 5000, "more"), (PAPER, "up"), (PAPER, "+1"), (PAPER, ""),
])
def test_a_malformed_paper_or_vote_is_a_400_page_and_records_nothing(client, cfg, reader, paper, vote):
    path = link(cfg, reader.uid)
    fields = {k: v for k, v in {"paper": paper, "vote": vote}.items() if v is not None}
    before = state(cfg)
    for r in (client.get(path, params=fields), client.post(path, data=fields)):
        assert r.status_code == 400 and INCOMPLETE in r.text
        assert "<script" not in r.text
    assert state(cfg) == before


def test_case_and_spaces_do_not_matter(client, cfg, reader):
    assert client.post(link(cfg, reader.uid), data={"paper": f" {PAPER}V2 ".lower(), "vote": " MORE "}).status_code == 200
    assert [(v["arxiv_id"], v["value"]) for v in votes(cfg)] == [(PAPER, 1)]


def test_an_unknown_paper_is_not_recorded(client, cfg, reader):
    path = link(cfg, reader.uid)
    before = state(cfg)
    for r in (client.get(path, params={"paper": "2504.00001", "vote": "more"}),
              client.post(path, data={"paper": "2504.00001", "vote": "more"})):
        assert r.status_code == 404 and "We do not know that paper" in r.text and "2504.00001" in r.text
    assert state(cfg) == before


def test_an_unsubscribed_reader_can_still_vote_and_stays_unsubscribed(client, cfg):
    add_paper(cfg, PAPER, TITLE)
    gone = add(cfg, "gone@example.org", SubscriberStatus.unsubscribed)
    before = snapshot(cfg)
    r = client.post(link(cfg, gone.uid), data={"paper": PAPER, "vote": "less"})
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    assert snapshot(cfg) == before  # the status and every other column as they were
    assert [v["subscriber_id"] for v in votes(cfg)] == [gone.id]


def test_erasing_a_subscriber_deletes_their_votes_and_their_model(client, cfg, reader):
    from pipeline.models import ReaderModel

    other = add(cfg, "other@example.org")
    client.post(link(cfg, reader.uid), data={"paper": PAPER, "vote": "more"})
    client.post(link(cfg, other.uid), data={"paper": PAPER, "vote": "less"})
    with Session(service.engine(cfg)) as session:
        for sub in (reader, other):
            session.add(ReaderModel(subscriber_id=sub.id, key="0" * 64, basis=[[PAPER, 0.5]]))
        session.commit()
    with Session(service.engine(cfg)) as session:
        assert remove_subscribers(session, emails=["reader@example.org"]) == (["reader@example.org"], [])
        session.commit()
    assert get(cfg, "reader@example.org") is None
    assert [v["subscriber_id"] for v in votes(cfg)] == [other.id]
    with Session(service.engine(cfg)) as session:
        assert session.exec(select(ReaderModel.subscriber_id)).all() == [other.id]
    r = client.post(link(cfg, reader.uid), data={"paper": PAPER, "vote": "more"})  # the old link names nobody
    assert r.status_code == 400 and GENERIC_BAD_LINK in r.text
    assert [v["subscriber_id"] for v in votes(cfg)] == [other.id]


def test_housekeeping_forgets_a_pending_address_with_its_votes(cfg):
    """A pending address is never mailed a digest, so it has no votes; if one had, it must not keep it alive."""
    add_paper(cfg, PAPER, TITLE)
    pending = add(cfg, "pending@example.org", SubscriberStatus.pending)
    with Session(service.engine(cfg)) as session:
        session.add(Vote(subscriber_id=pending.id, arxiv_id=PAPER, value=1))
        session.commit()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    assert service.housekeeping(cfg, now=later).forgotten == 1
    assert get(cfg, "pending@example.org") is None and votes(cfg) == []
