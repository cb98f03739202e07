"""Text from outside made safe for a terminal."""

from __future__ import annotations

from pipeline.text import terminal_text


def test_nothing_a_terminal_acts_on_is_left():
    hostile = "\x1b]0;owned\x07\x1b[2J\x9b31m\x90q\x9c\x7f\x00\x08a\u202ebc\u2066\u200f"
    assert terminal_text(hostile) == "]0;owned[2J31mqabc"


def test_line_breaks_become_spaces_and_columns_stay_aligned():
    assert terminal_text("  failed    a@b: 550\r\nforged line\tx\u2028y\x85z") == "  failed    a@b: 550  forged line x y z"


def test_ordinary_text_is_kept_and_undecodable_bytes_show_as_replacement_characters():
    assert terminal_text("Zoë — “naïve” 日本 \u200dx") == "Zoë — “naïve” 日本 \u200dx"
    assert terminal_text("caf\udce9") == "caf\ufffd"
    assert terminal_text(None) == "" and terminal_text(42) == "42"
