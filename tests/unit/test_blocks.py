"""A reader's digest joined from the issue's blocks is the digest a whole render of their selection gives:
the same HTML, text and subject byte for byte, hostile text included; and as a MIME message it parses to
the same parts. The templates, MJML and premailer run once per issue, never per reader or selection."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import random
import re
from email.headerregistry import Address

import pytest

from pipeline.compose import render
from pipeline.compose.assembly import Assembler
from pipeline.compose.blocks import TOC_FROM, Chosen, IssueBlocks, top
from pipeline.compose.message import MessageTemplate, Recipient
from pipeline.compose.render import render_blocks, render_plain
from tests.unit.test_digest_size import worst_day
from tests.unit.test_render import CTX, sample_items

WITH_IMAGES = dataclasses.replace(CTX, images="proxied")
HOSTILE_MATCH = 'matches <script>alert(1)</script> & "quotes" \u202e and pm-cut-0123456789abcdef.card.1.'


def hostile_items() -> list[dict]:
    items = sample_items(20, thumbnails=True)
    items[2]["title"] = '<img src=x onerror=alert(1)> pm-cut-0123456789abcdef.tail.0. & "quoted" — Ünïcode'
    items[3]["summary"] = ".leading dot\n.and another " * 20
    items[4]["why"] = '<b onmouseover="alert(1)">hot</b> · +5 upvotes'
    items[5]["authors"] = ["Eve\r\nBcc: victim@example.com"]
    return items


ITEMS = hostile_items()
BLOCKS = render_blocks(ITEMS, ctx=WITH_IMAGES)

SELECTIONS = {
    "the global top 10": top(10),
    "the whole pool, with a table of contents": top(len(ITEMS)),
    "one paper": (Chosen(7, "matches diffusion"),),
    "reordered, matched and topped up": (Chosen(9, "matches diffusion"), Chosen(2, HOSTILE_MATCH),
                                         Chosen(0, also=True), Chosen(1, also=True)),
    "just under the table of contents": tuple(Chosen(i) for i in range(TOC_FROM - 2, -1, -1))[:TOC_FROM - 1],
    "just at it": tuple(Chosen(i, "matches x") for i in range(TOC_FROM)),
    "all topped up": tuple(Chosen(i, also=True) for i in (4, 3, 5)),
}


@pytest.mark.parametrize("name", SELECTIONS)
def test_a_joined_selection_is_its_whole_render_byte_for_byte(name):
    selection = SELECTIONS[name]
    subject, html, text = BLOCKS.joined(selection)
    whole = render_plain(ITEMS, ctx=WITH_IMAGES, selection=selection, variants=BLOCKS.plan(selection))
    assert (subject, html, text) == (whole.subject, whole.html, whole.text)
    assert html.count('class="card" id="p') == len(selection)  # the table of contents is no card
    assert ("Also trending" in html) == any(c.also for c in selection)
    assert ("In this issue" in html) == (len(selection) >= TOC_FROM)


def test_the_global_digest_is_the_top_of_the_pool():
    assert render.render_digest(ITEMS[:10], ctx=WITH_IMAGES).html == BLOCKS.joined(top(10))[1]


def test_random_selections_join_to_their_whole_render():
    rng = random.Random(7)
    for _ in range(6):
        chosen = rng.sample(range(len(ITEMS)), rng.randint(1, 14))
        mine = rng.randint(0, len(chosen))
        selection = tuple(Chosen(i, rng.choice([None, "matches diffusion", HOSTILE_MATCH]), also=n >= mine)
                          for n, i in enumerate(chosen))
        whole = render_plain(ITEMS, ctx=WITH_IMAGES, selection=selection, variants=BLOCKS.plan(selection))
        assert BLOCKS.joined(selection) == (whole.subject, whole.html, whole.text)


def test_hostile_text_stays_text_and_markers_cannot_be_forged():
    _, html, text = BLOCKS.joined(SELECTIONS["reordered, matched and topped up"])
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in html
    assert "<img src=x" not in html and "<b onmouseover" not in html
    assert "pm-cut-0123456789abcdef.tail.0." in html  # a forged marker is only text: nothing was cut there
    assert "Why it's here:</span> matches diffusion; " in html.replace("&#39;", "'")
    assert "Why it's trending:" in html and "Also trending" in html
    assert "Bcc:" not in BLOCKS.subject(SELECTIONS["one paper"])


def test_the_lowest_ranked_cards_lose_their_extras_per_selection():
    items = worst_day()
    blocks = render_blocks(items, ctx=WITH_IMAGES)
    plan = blocks.plan(top(len(items)))
    assert plan == sorted(plan, key=["full", "short", "bare"].index) and plan[-1] == "bare"
    assert blocks.plan(top(5)) == ["full"] * 5  # a short digest keeps everything
    whole = render_plain(items, ctx=WITH_IMAGES, selection=top(len(items)), variants=plan)
    assert blocks.joined(top(len(items)))[1] == whole.html


def test_blocks_survive_being_stored():
    assert IssueBlocks.from_json(BLOCKS.to_json()).joined(SELECTIONS["reordered, matched and topped up"]) == \
        BLOCKS.joined(SELECTIONS["reordered, matched and topped up"])


def assembler() -> Assembler:
    return Assembler(BLOCKS, sender=Address("Trending ML Papers", "digest", "papers.example.org"),
                     list_id="digest.papers.example.org", list_name="Trending ML Papers",
                     archive_url="https://papers.example.org/issues/2025-03-21",
                     date=dt.datetime(2025, 3, 22, 6, tzinfo=dt.UTC))


def reader(n: int) -> Recipient:
    return Recipient(address=f"reader{n}@example.org", message_id=f"m{n}@papers.example.org",
                     unsubscribe_url=f"https://papers.example.org/u/tok{n}",
                     unsubscribe_mailto=f"unsubscribe@papers.example.org?subject=unsubscribe%20tok{n}",
                     preferences_url=f"https://papers.example.org/p/tok{n}",
                     feedback_url=f"https://papers.example.org/f/tok{n}")


def parts(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return str(message["Subject"]), [(p.get_content_type(), p.get_content()) for p in message.iter_parts()]


@pytest.mark.parametrize("name", SELECTIONS)
def test_an_assembled_message_parses_to_the_message_of_its_whole_render(name):
    selection = SELECTIONS[name]
    joined = assembler().template(selection).render(reader(1))
    subject, html, text = BLOCKS.joined(selection)
    encoded = MessageTemplate.build(subject=subject, html=html, text=text,
                                    sender=Address("Trending ML Papers", "digest", "papers.example.org"),
                                    list_id="digest.papers.example.org", list_name="Trending ML Papers",
                                    archive_url="https://papers.example.org/issues/2025-03-21",
                                    date=dt.datetime(2025, 3, 22, 6, tzinfo=dt.UTC)).render(reader(1))
    assert parts(joined) == parts(encoded)
    assert "https://papers.example.org/f/tok1?paper=" in parts(joined)[1][0][1]
    lines = joined.split(b"\r\n")
    body = lines[lines.index(b""):]
    assert all(len(line) <= 76 for line in body) and b"\n" not in joined.replace(b"\r\n", b"")


def test_the_wire_form_is_dot_stuffed_across_block_boundaries():
    template = assembler().template(top(10))
    wire = template.render_wire(reader(2))
    assert b"\r\n.leading" not in wire.replace(b"\r\n..", b"")
    assert wire.replace(b"\r\n..", b"\r\n.") == template.render(reader(2))


def test_ten_thousand_readers_in_fifty_selections_render_each_card_once(monkeypatch):
    calls = {"mjml": 0, "premailer": 0}
    real_mjml, real_inline = render.mjml2html, render._inline_css

    def counted(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(render, "mjml2html", counted("mjml", real_mjml))
    monkeypatch.setattr(render, "_inline_css", counted("premailer", real_inline))
    blocks = render_blocks(ITEMS, ctx=WITH_IMAGES)
    assert calls == {"mjml": 3, "premailer": 3}  # one document per card size, every candidate in each
    rng = random.Random(3)
    selections = [tuple(Chosen(i) for i in rng.sample(range(len(ITEMS)), 10)) for _ in range(50)]
    joiner = Assembler(blocks, sender=Address("P", "digest", "papers.example.org"), list_id="d.example.org",
                       list_name="P", archive_url="https://papers.example.org/a",
                       date=dt.datetime(2025, 3, 22, tzinfo=dt.UTC))
    for n in range(10_000):
        wire = joiner.template(selections[n % 50]).render_wire(reader(n))
        assert f"To: reader{n}@example.org\r\n".encode() in wire
        if n < 100:  # each reader's own links, and their selection's papers in its order
            text = parts(joiner.template(selections[n % 50]).render(reader(n)))[1][0][1]
            assert f"/f/tok{n}?paper=" in text and f"/f/tok{n - 50}?" not in text
            shown = re.findall(r"huggingface\.co/papers/([0-9.]+)", text)
            assert list(dict.fromkeys(shown)) == [ITEMS[c.index]["arxiv_id"] for c in selections[n % 50]]
    assert joiner.assembled == 50
    assert calls == {"mjml": 3, "premailer": 3}
