"""Turn an `Answer` into plain text (CLI) or a JSON-ready dict (CLI --json and the app's API)."""

from __future__ import annotations

import textwrap
from dataclasses import asdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `qa ask` answered by a server must not import the search stack
    from qa.present.highlight import Highlights
    from qa.search.types import Answer

NOT_COVERED = "No summary seems to answer this question."
CLOSEST = "Closest passages, which may not answer it:"


def cut_note(part: str) -> str:
    """What a reader is told when a long question was cut to the part the search read."""
    return f"Your question is long, so only this part of it was searched: “{part}”"


DISCLAIMER = (
    "These are plain-language research summaries, not medical advice. "
    "Talk to a clinician before changing any treatment."
)


def answer_to_dict(answer: Answer, highlights: Highlights | None = None) -> dict:
    """A JSON-ready dict of the answer: studies, passages, highlights, scores and citation fields."""
    from qa.models.multilingual import notice  # here, not at the top: `qa ask` via a server stays light

    highlights = highlights or {}

    def marked(rank: int, n: int) -> list[str]:
        per_passage = highlights.get(rank, [])
        return [s.text for s in per_passage[n] if s.marked] if n < len(per_passage) else []

    return {
        "question": answer.question,
        "searched": answer.searched or answer.question,
        "corrections": [list(pair) for pair in answer.corrections],
        "expansions": [list(pair) for pair in answer.expansions],
        "covered": answer.covered,
        "reason": answer.reason,
        "mode": answer.mode,
        "settings": answer.settings,
        "reranked": answer.reranked,
        "rerank_skipped": answer.rerank_skipped,
        "cut": answer.cut,
        "language": answer.language,
        "notice": notice(answer.language),
        "filters": asdict(answer.filters),
        "studies": [
            {
                "rank": s.rank,
                "doc_id": s.doc_id,
                "score": round(s.score, 6),
                "citation": {**asdict(s.citation), "url": s.citation.url, "text": s.citation.as_text()},
                "also": list(s.also),
                "passages": [
                    {
                        "section": p.chunk.section,
                        "text": p.chunk.text,
                        "score": round(p.score, 6),
                        "dense_score": None if p.dense is None else round(p.dense, 4),
                        "bm25_score": None if p.keyword is None else round(p.keyword, 4),
                        "rerank_score": None if p.rerank is None else round(p.rerank, 4),
                        "highlights": marked(s.rank, n),
                    }
                    for n, p in enumerate(s.passages)
                ],
            }
            for s in answer.studies
        ],
    }


def answer_to_text(answer: Answer, width: int = 100) -> str:
    """The answer as readable text for a terminal."""
    lines = [cut_note(answer.cut) + ".", ""] if getattr(answer, "cut", "") else []
    if not answer.studies:
        return "\n".join(lines) + NOT_COVERED + (f" ({answer.reason})" if answer.reason else "")
    if not answer.covered:
        lines += [f"{NOT_COVERED} ({answer.reason})", CLOSEST, ""]
    for study in answer.studies:
        c = study.citation
        lines.append(f"{study.rank}. {c.label} — {c.title}")
        meta = " · ".join(x for x in (c.publisher, c.url, ", ".join(c.tags)) if x)
        if meta:
            lines.append(f"   {meta}")
        for p in study.passages:
            lines.append(f"   [{p.chunk.section}]")
            lines.extend(textwrap.wrap(p.chunk.text, width, initial_indent="   ", subsequent_indent="   "))
        lines.append("")
    lines.append(DISCLAIMER)
    return "\n".join(lines)
