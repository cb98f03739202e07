"""Each reader's message joined from an issue's blocks, every block MIME-encoded once.

:class:`Assembler` quoted-printable-encodes each block of :class:`pipeline.compose.blocks.IssueBlocks`
the first time a selection needs it (a block ends at a line boundary, so encoded blocks join as they
are), encodes the header once per subject, and gives each selection its
:class:`pipeline.compose.message.MessageTemplate`: readers with the same selection share it, and the
reader costs what a global digest's reader costs, a join with their own links.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import Address

from pipeline.compose.blocks import IssueBlocks, Selection, html_escape
from pipeline.compose.message import (
    MessageTemplate,
    Segment,
    body_segments,
    head_segments,
    merged,
    new_boundary,
    qp_body,
)

KEPT = 512  # selections whose messages stay built (about 120 KB each): readers sharing one are not all in one batch


class Assembler:
    """One issue's message templates, per selection."""

    def __init__(self, blocks: IssueBlocks, *, sender: Address, list_id: str, list_name: str, archive_url: str,
                 date: datetime) -> None:
        self.blocks = blocks
        self._header = {"sender": sender, "list_id": list_id, "list_name": list_name, "archive_url": archive_url,
                        "date": date}
        self._boundary = new_boundary()
        self._heads: dict[str, list[Segment]] = {}
        # Each fixed piece's encoding, by the piece (the blocks outlive this), and each filled-in hole's, by its text.
        self._fixed: dict[tuple[int, bool], list[Segment]] = {}
        self._filled: dict[tuple[str, bool], list[Segment]] = {}
        self._built: OrderedDict[Selection, MessageTemplate] = OrderedDict()
        self._lock = threading.Lock()
        self.assembled = 0  # templates built (distinct selections, less any built again after eviction)

    def template(self, selection: Selection) -> MessageTemplate:
        with self._lock:  # one per process, and a process may send batches from threads
            return self._template(selection)

    def _template(self, selection: Selection) -> MessageTemplate:
        template = self._built.get(selection)
        if template is not None:
            self._built.move_to_end(selection)
            return template
        subject = self.blocks.subject(selection)
        head = self._heads.get(subject)
        if head is None:
            head = self._heads[subject] = head_segments(subject=subject, boundary=self._boundary,
                                                        **self._header)  # type: ignore[arg-type]
        plan = self.blocks.plan(selection)
        text = self._encoded(selection, "text", plan)
        html = self._encoded(selection, "html", plan)
        template = MessageTemplate([*head, *body_segments(self._boundary, text, html)])
        self._built[selection] = template
        self.assembled += 1
        if len(self._built) > KEPT:
            self._built.popitem(last=False)
        return template

    def _encoded(self, selection: Selection, part: str, plan: Sequence[str]) -> list[Segment]:
        """The part's blocks, each fixed piece encoded once for the issue and each filled-in hole once per
        value (a card at another position, or matched by other interests, costs only its holes), joined
        into as few segments as the slots allow."""
        out: list[Segment] = []
        run: list[bytes] = []
        is_html = part == "html"
        fixed, filled = self._fixed, self._filled
        for pieces, values in self.blocks.sequence(selection, part, plan):
            for piece in pieces:
                if isinstance(piece, str):
                    encoded = fixed.get((id(piece), is_html))
                    if encoded is None:
                        encoded = fixed[(id(piece), is_html)] = merged(qp_body(piece))
                else:
                    value = values[piece[0]]
                    encoded = filled.get((value, is_html))
                    if encoded is None:
                        encoded = filled[(value, is_html)] = merged(qp_body(html_escape(value) if is_html else value))
                for segment in encoded:
                    if isinstance(segment, bytes):
                        run.append(segment)
                    else:
                        out.append(b"".join(run))
                        run = []
                        out.append(segment)
        out.append(b"".join(run))
        return out
