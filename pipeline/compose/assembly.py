"""Each reader's message joined from an issue's blocks, every block MIME-encoded once.

:class:`Assembler` quoted-printable-encodes each block of :class:`pipeline.compose.blocks.IssueBlocks`
the first time a selection needs it (a block ends at a line boundary, so encoded blocks join as they
are), encodes the header once per subject, and gives each selection its
:class:`pipeline.compose.message.MessageTemplate`: readers with the same selection share it, and the
reader costs what a global digest's reader costs, a join with their own links.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import Address

from pipeline.compose.blocks import IssueBlocks, Selection, fill
from pipeline.compose.message import MessageTemplate, Segment, body_segments, head_segments, new_boundary, qp_body

KEPT = 256  # selections whose templates stay built (readers with the same one are not always together)


class Assembler:
    """One issue's message templates, per selection."""

    def __init__(self, blocks: IssueBlocks, *, sender: Address, list_id: str, list_name: str, archive_url: str,
                 date: datetime) -> None:
        self.blocks = blocks
        self._header = {"sender": sender, "list_id": list_id, "list_name": list_name, "archive_url": archive_url,
                        "date": date}
        self._boundary = new_boundary()
        self._heads: dict[str, list[Segment]] = {}
        # A block's encoding with its holes filled: by the block (the blocks outlive this), the part and the values.
        self._encodings: dict[tuple[int, bool, tuple[str, ...]], list[Segment]] = {}
        self._built: OrderedDict[Selection, MessageTemplate] = OrderedDict()
        self.assembled = 0  # templates built (distinct selections, less any built again after eviction)

    def template(self, selection: Selection) -> MessageTemplate:
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
        out: list[Segment] = []
        is_html = part == "html"
        for pieces, values in self.blocks.sequence(selection, part, plan):
            filled = tuple(values[p[0]] for p in pieces if isinstance(p, tuple))
            key = (id(pieces), is_html, filled)
            encoded = self._encodings.get(key)
            if encoded is None:
                encoded = self._encodings[key] = [
                    segment for piece in pieces for segment in qp_body(fill([piece], values, html=is_html))]
            out.extend(encoded)
        return out
