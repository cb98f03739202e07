"""A reader's private feed: the digests they were sent, as Atom, at an address on their preferences page that a
new address revokes."""

from __future__ import annotations

import re

import feedparser
from sqlmodel import Session, select

from pipeline import service
from pipeline.audience.subscribers import remove_subscribers
from pipeline.audience.tokens import Purpose, Signer
from pipeline.models import Issue, Subscriber
from tests.support.sending import DAY, prepare, send_all, subscribe


def reader(cfg, email: str) -> Subscriber:
    with Session(service.engine(cfg), expire_on_commit=False) as session:
        return session.exec(select(Subscriber).where(Subscriber.email == email)).one()


def feed_path(client, cfg, email: str) -> str:
    """The feed address as the reader's preferences page shows it."""
    preferences = Signer(cfg.secret_key, Purpose.preferences).sign(reader(cfg, email).uid)
    page = client.get(f"/p/{preferences}").text
    (address,) = re.findall(r'id="feed-address" type="url" readonly value="([^"]+)"', page)
    assert address.startswith(f"{cfg.base_url}/feed/")
    return address.removeprefix(cfg.base_url)


def test_the_feed_holds_the_digests_the_reader_was_sent(client, cfg):
    emails = prepare(cfg, n=2)
    send_all(cfg)
    subscribe(cfg, ["late@example.org"])  # subscribed after the issue went out: nothing sent to them yet
    answer = client.get(feed_path(client, cfg, emails[0]))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert answer.headers["cache-control"] == "private, max-age=300" and answer.headers["x-robots-tag"] == "noindex"
    parsed = feedparser.parse(answer.content)
    assert parsed.bozo == 0 and parsed.feed.title == f"{cfg.list_name}: your digests"
    with Session(service.engine(cfg)) as session:
        issue = session.exec(select(Issue)).one()
    (entry,) = parsed.entries
    assert entry.link == f"{cfg.base_url}/issues/{DAY}"
    assert all(item["title"] in entry.content[0].value for item in issue.items[:issue.size])
    assert issue.items[issue.size]["title"] not in entry.content[0].value  # their copy's papers, no more
    late = feedparser.parse(client.get(feed_path(client, cfg, "late@example.org")).content)
    assert late.bozo == 0 and late.entries == []


def test_a_new_address_revokes_the_old_one(client, cfg):
    emails = prepare(cfg, n=1)
    send_all(cfg)
    old = feed_path(client, cfg, emails[0])
    preferences = Signer(cfg.secret_key, Purpose.preferences).sign(reader(cfg, emails[0]).uid)
    page = client.post(f"/p/{preferences}/feed/renew")
    assert page.status_code == 200 and "Your feed has a new address" in page.text
    new = feed_path(client, cfg, emails[0])
    assert new != old
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200


def test_an_address_that_names_no_reader_answers_404(client, cfg):
    emails = prepare(cfg, n=1)
    uid = reader(cfg, emails[0]).uid
    path = feed_path(client, cfg, emails[0])
    feed_signer = Signer(cfg.secret_key, Purpose.reader_feed)
    for wrong in (path[:-2] + ("AA" if not path.endswith("AA") else "BB"),  # tampered
                  f"/feed/{Signer(cfg.secret_key, Purpose.preferences).sign(f'{uid}.0')}",  # another purpose
                  f"/feed/{feed_signer.sign(uid)}",  # no generation
                  f"/feed/{feed_signer.sign(f'{uid}.1')}",  # a generation not reached yet
                  f"/feed/{feed_signer.sign('nobody.0')}",
                  f"/feed/{Signer('another-secret-' + 'x' * 30, Purpose.reader_feed).sign(f'{uid}.0')}"):
        assert client.get(wrong).status_code == 404, wrong
    with Session(service.engine(cfg)) as session:
        remove_subscribers(session, emails=[emails[0]])
        session.commit()
    assert client.get(path).status_code == 404


def test_a_personal_readers_feed_holds_their_own_papers(client, cfg):
    from pipeline.audience.interests import Interest, dump, match

    emails = prepare(cfg, n=1)
    with Session(service.engine(cfg)) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == emails[0])).one()
        sub.topics = dump([Interest.parse("keyword", "video")])
        session.add(sub)
        session.commit()
    send_all(cfg)
    with Session(service.engine(cfg)) as session:
        issue = session.exec(select(Issue)).one()
    video = [Interest.parse("keyword", "video")]
    theirs = [item for item in issue.items if match(item, video)][:10]
    others = [item for item in issue.items[:issue.size] if not match(item, video)]
    assert len(theirs) >= 3 and others
    (entry,) = feedparser.parse(client.get(feed_path(client, cfg, emails[0])).content).entries
    content = entry.content[0].value
    assert all(item["title"] in content for item in theirs)
    assert not any(item["title"] in content for item in others)
