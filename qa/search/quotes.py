"""A quote of the digest ("In short"): the one type the search and every format share.

Only the standard library: `qa ask` answered by a running server builds these from JSON.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quote:
    """One sentence of the digest, quoted word for word from a study's shown passage."""

    rank: int
    doc_id: str
    section: str
    text: str
    #: The reranker's score of the sentence against the question (None: not scored).
    score: float | None = None

    def as_dict(self) -> dict:
        """The JSON form: rank, doc_id, section, text."""
        return {"rank": self.rank, "doc_id": self.doc_id, "section": self.section, "text": self.text}
