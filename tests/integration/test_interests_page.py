"""The preferences page's interests and votes, on SQLite and PostgreSQL: add, remove, refuse with a reason
(keeping what was typed), list and clear the votes, and the preferences form beside them as it was."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlmodel import Session

from pipeline import service
from pipeline.audience.interests import MAX_INTERESTS
from pipeline.audience.tokens import Purpose
from pipeline.models import Frequency, Vote
from tests.support.web import add, add_paper, get, snapshot, token, votes


@pytest.fixture
def reader(cfg):
    return add(cfg, "reader@example.org", frequency=Frequency.weekly, weekday=2, digest_size=7)


def prefs(cfg, uid: str) -> str:
    return f"/p/{token(cfg, Purpose.preferences, uid)}"


def section(html: str, name: str) -> str:
    found = re.search(rf'<section class="card" id="{name}".*?</section>', html, re.S)
    assert found, f"the page has a {name} section"
    return found.group(0)


def test_no_interests_means_everything_and_no_votes_says_so(client, cfg, reader):
    html = client.get(prefs(cfg, reader.uid)).text
    interests = section(html, "interests")
    assert "<strong>Everything.</strong>" in interests
    form = re.search(r'<form method="post" action="([^"]+)" class="add">(.*?)</form>', interests, re.S)
    assert form.group(1) == prefs(cfg, reader.uid) + "/interests#interests"
    for control in ('<label for="interest-kind">', '<select id="interest-kind" name="kind">',
                    '<label for="interest-value">', 'id="interest-value" name="value" maxlength="100"',
                    '<legend>Papers that match it</legend>', 'name="mode" value="include" checked',
                    'name="mode" value="exclude">', '<option value="keyword" selected>'):
        assert control in form.group(2), control
    assert "None yet." in section(html, "votes") and "Clear all votes" not in html
    assert "<script" not in html


def test_an_interest_is_added_listed_and_removed(client, cfg, reader):
    path = prefs(cfg, reader.uid)
    r = client.post(path + "/interests", data={"kind": "category", "value": " cs.lg ", "mode": "exclude"})
    assert r.status_code == 200 and "Added “cs.LG”." in r.text
    r = client.post(path + "/interests", data={"kind": "author", "value": "Yann  LeCun"})  # include by default
    assert r.status_code == 200
    stored = get(cfg, "reader@example.org")
    assert stored.topics == [{"kind": "category", "value": "cs.LG", "mode": "exclude"},
                             {"kind": "author", "value": "Yann LeCun", "mode": "include"}]
    assert (stored.frequency, stored.weekday, stored.digest_size) == (Frequency.weekly, 2, 7)  # untouched

    listed = section(client.get(path).text, "interests")
    assert "Everything." not in listed
    items = re.findall(r"<li>(.*?)</li>", listed, re.S)
    assert len(items) == 2
    assert 'class="kind">arXiv category</span> <span class="value">cs.LG</span>' in items[0] and "Exclude" in items[0]
    assert 'class="kind">Author</span> <span class="value">Yann LeCun</span>' in items[1] and "Include" in items[1]
    assert f'action="{path}/interests/remove#interests"' in items[0]
    assert 'aria-label="Remove cs.LG (arXiv category)"' in items[0]

    r = client.post(path + "/interests/remove", data={"kind": "category", "value": "CS.LG"})
    assert r.status_code == 200 and "Removed “cs.LG”." in r.text
    assert get(cfg, "reader@example.org").topics == [{"kind": "author", "value": "Yann LeCun", "mode": "include"}]
    again = client.post(path + "/interests/remove", data={"kind": "category", "value": "cs.LG"})
    assert again.status_code == 200 and "was not one of your interests" in again.text


def test_the_same_interest_twice_is_kept_once_and_the_other_mode_replaces_it(client, cfg, reader):
    path = prefs(cfg, reader.uid) + "/interests"
    client.post(path, data={"kind": "keyword", "value": "Diffusion Models", "mode": "include"})
    r = client.post(path, data={"kind": "keyword", "value": "diffusion model", "mode": "include"})
    assert r.status_code == 200 and "“diffusion model” is already one of your interests." in r.text
    r = client.post(path, data={"kind": "keyword", "value": "diffusion models", "mode": "exclude"})
    assert "Now excluding the papers that match “diffusion models”." in r.text
    assert get(cfg, "reader@example.org").topics == [{"kind": "keyword", "value": "diffusion models",
                                                      "mode": "exclude"}]


@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "category", "value": "cs.ML", "mode": "exclude"}, "“cs.ML” is not an arXiv category like cs.LG"),
    ({"kind": "keyword", "value": "   ", "mode": "include"}, "Type the keyword or phrase to include."),
    ({"kind": "keyword", "value": "x" * 101, "mode": "include"}, "at most 100 characters"),
    ({"kind": "keyword", "value": "a b c d e f g h i", "mode": "include"}, "at most 8 words"),
    ({"kind": "author", "value": "42", "mode": "exclude"}, "is not a name"),
    ({"kind": "topic", "value": "diffusion", "mode": "include"}, "Choose what kind of interest this is"),
    ({"kind": "keyword", "value": "diffusion", "mode": "sometimes"}, "Choose whether to include or to exclude"),
    ({"value": "diffusion"}, "Choose what kind of interest this is"),
])
def test_a_refused_interest_comes_back_in_its_form_with_the_reason(client, cfg, reader, fields, message):
    path = prefs(cfg, reader.uid)
    before = snapshot(cfg)
    r = client.post(path + "/interests", data=fields)
    assert r.status_code == 400
    interests = section(r.text, "interests")
    assert re.search(r'<p class="error" role="alert">([^<]*)</p>', interests).group(1).count(message) == 1
    value = fields.get("value", "")
    if value.strip():
        assert f'name="value" maxlength="100" value="{value}"' in interests  # what was typed is not lost
        assert 'aria-invalid="true"' in interests
    if fields.get("kind") in ("category", "author"):
        assert f'<option value="{fields["kind"]}" selected>' in interests
    if fields.get("mode") == "exclude":
        assert 'name="mode" value="exclude" checked' in interests
    assert f'<form method="post" action="{path}">' in r.text  # the preferences form, as it was
    assert snapshot(cfg) == before


def test_a_hostile_interest_is_stored_as_text_and_shown_escaped(client, cfg, reader):
    path = prefs(cfg, reader.uid)
    hostile = '"><script>alert(1)</script>'
    r = client.post(path + "/interests", data={"kind": "keyword", "value": hostile})
    assert r.status_code == 200 and "<script>" not in r.text and "&lt;script&gt;" in r.text
    assert get(cfg, "reader@example.org").topics[0]["value"] == hostile
    r = client.post(path + "/interests", data={"kind": "category", "value": hostile})
    assert r.status_code == 400 and "<script>" not in r.text


def test_no_more_than_the_limit(client, cfg):
    full = [{"kind": "keyword", "value": f"word{n}", "mode": "include"} for n in range(MAX_INTERESTS)]
    sub = add(cfg, "full@example.org", topics=full)
    path = prefs(cfg, sub.uid)
    html = client.get(path).text
    assert 'class="add"' not in html and f"That is {MAX_INTERESTS} interests" in html
    r = client.post(path + "/interests", data={"kind": "keyword", "value": "one more"})
    assert r.status_code == 400 and f"at most {MAX_INTERESTS} interests" in r.text
    assert get(cfg, "full@example.org").topics == full
    r = client.post(path + "/interests", data={"kind": "keyword", "value": "word1", "mode": "exclude"})
    assert r.status_code == 200  # switching one is not one more


def test_unreadable_stored_interests_are_left_out_of_the_page(client, cfg):
    sub = add(cfg, "odd@example.org", topics=["old style", {"kind": "category", "value": "xx.YY"},
                                               {"kind": "keyword", "value": "kept"}])
    listed = section(client.get(prefs(cfg, sub.uid)).text, "interests")
    assert re.findall(r'class="value">([^<]*)<', listed) == ["kept"]


def test_the_votes_are_listed_newest_first_and_cleared(client, cfg, reader):
    other = add(cfg, "other@example.org")
    add_paper(cfg, "2503.16428", "Scaling <Diffusion>")
    with Session(service.engine(cfg)) as session:
        now = dt.datetime(2025, 3, 21, 9, tzinfo=dt.UTC)
        session.add(Vote(subscriber_id=reader.id, arxiv_id="2503.16428", value=1, voted_at=now))
        session.add(Vote(subscriber_id=reader.id, arxiv_id="2401.00001", value=-1,  # not stored (any more)
                         voted_at=now + dt.timedelta(days=1)))
        session.add(Vote(subscriber_id=other.id, arxiv_id="2503.16428", value=-1, voted_at=now))
        session.commit()
    path = prefs(cfg, reader.uid)
    listed = section(client.get(path).text, "votes")
    items = re.findall(r"<li>(.*?)</li>", listed, re.S)
    assert len(items) == 2
    assert "Less like this" in items[0] and '<a href="https://arxiv.org/abs/2401.00001">arXiv 2401.00001</a>' in items[0]
    assert "22 Mar 2025" in items[0]
    assert "More like this" in items[1] and ">Scaling &lt;Diffusion&gt;</a>" in items[1] and "21 Mar 2025" in items[1]
    assert f'<form method="post" action="{path}/votes/clear#votes">' in listed

    r = client.post(path + "/votes/clear")
    assert r.status_code == 200 and "Cleared 2 votes." in r.text and "None yet." in section(r.text, "votes")
    assert [v["subscriber_id"] for v in votes(cfg)] == [other.id]
    assert "There were no votes to clear." in client.post(path + "/votes/clear").text


def test_the_preferences_form_keeps_the_interests(client, cfg, reader):
    path = prefs(cfg, reader.uid)
    client.post(path + "/interests", data={"kind": "organization", "value": "Google DeepMind"})
    r = client.post(path, data={"frequency": "daily", "weekday": "0", "digest_size": "12"})
    assert r.status_code == 200 and "Saved." in r.text and "Google DeepMind" in section(r.text, "interests")
    saved = get(cfg, "reader@example.org")
    assert saved.digest_size == 12 and saved.topics == [{"kind": "organization", "value": "Google DeepMind",
                                                         "mode": "include"}]
