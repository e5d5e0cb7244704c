"""Turn an `Answer` into plain text (CLI) or a JSON-ready dict (CLI --json and the app's API)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from qa.present.translations import ui_text
from qa.present.view import AnswerView, answer_view, view_to_dict

if TYPE_CHECKING:  # annotations only: `qa ask` answered by a server must not import the search stack
    from qa.present.highlight import Highlights
    from qa.search.types import Answer

#: The English texts (qa/present/translations.py has them in every language).
NOT_COVERED = ui_text("en", "not_covered")
CLOSEST = ui_text("en", "closest")
DISCLAIMER = ui_text("en", "disclaimer")


def cut_note(part: str) -> str:
    """What a reader is told when a long question was cut to the part the search read."""
    return f"Your question is long, so only this part of it was searched: “{part}”"


def answer_to_dict(answer: Answer, highlights: Highlights | None = None) -> dict:
    """A JSON-ready dict of the answer: studies, passages, highlights, scores, citation fields, digest."""
    return view_to_dict(answer_view(answer, highlights))


def answer_to_text(view: AnswerView, width: int = 100) -> str:
    """The answer as readable text for a terminal."""
    lines = [cut_note(view.cut) + ".", ""] if view.cut else []
    not_covered = view.text("not_covered")
    if view.preparing:
        return "\n".join(lines) + view.reason
    if not view.studies:
        return "\n".join(lines) + not_covered + (f" ({view.reason})" if view.reason else "")
    if not view.covered:
        lines += [f"{not_covered} ({view.reason})", view.text("closest"), ""]
    if view.digest:
        lines.append(view.text("in_short") + ":")
        for q in view.digest:
            lines.extend(
                textwrap.wrap(f"“{q.text}” [{q.rank}]", width, initial_indent="- ", subsequent_indent="  ")
            )
        lines.append("")
    for study in view.studies:
        c = study.citation
        lines.append(f"{study.rank}. {c.label} — {c.title}")
        meta = " · ".join(x for x in (c.publisher, c.url, ", ".join(c.tags)) if x)
        if meta:
            lines.append(f"   {meta}")
        for p in study.passages:
            lines.append(f"   [{p.section}]")
            lines.extend(textwrap.wrap(p.text, width, initial_indent="   ", subsequent_indent="   "))
        lines.append("")
    lines.append(view.text("disclaimer"))
    return "\n".join(lines)
