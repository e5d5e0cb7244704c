"""Citations: what a reader needs to find a study, and out as plain text, BibTeX and RIS.

Only the standard library: `qa ask` answered by a running server shows citations without
loading the document parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Citation:
    """What a reader needs to find a study: shown beside every passage."""

    label: str
    title: str
    authors: str = ""
    year: str = ""
    publisher: str = ""
    link: str = ""
    doi: str = ""
    tags: tuple[str, ...] = ()
    published: str = ""

    @property
    def url(self) -> str:
        """The best link to the study: its DOI resolver, else the link given."""
        return f"https://doi.org/{self.doi}" if self.doi else self.link

    def as_text(self) -> str:
        """One-line plain-text citation, e.g. for copying."""
        who = [self.authors, f"({self.year or 'n.d.'})"] if self.authors else [self.label]
        parts = [*who, self.title + "."]
        if self.publisher:
            parts.append(self.publisher.rstrip(".") + ".")
        if self.url:
            parts.append(self.url)
        return " ".join(parts)


def _authors(citation: Citation) -> list[str]:
    names = [a.strip().rstrip(".").strip() for a in re.split(r",|;|&| and ", citation.authors)]
    return [n for n in names if n and n.lower() not in ("et al", "et al.")]


def _key(citation: Citation, taken: set[str]) -> str:
    authors = _authors(citation)
    # Without authors (an organisation), the first word of the label: "Wuerzburg ... (2022)".
    label_word = (re.findall(r"[^\W\d_]+", citation.label) or ["study"])[0]
    first = authors[0].split()[-1] if authors else label_word
    base = re.sub(r"[^A-Za-z0-9]", "", first) or "study"
    base += citation.year or "nd"
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}{chr(ord('a') + n - 1)}"
    taken.add(key)
    return key


def _bib_escape(text: str) -> str:
    return re.sub(r"([{}%&$#_])", r"\\\1", text)


def to_text(citations: list[Citation]) -> str:
    """One numbered plain-text citation a line."""
    return "\n".join(f"{n}. {c.as_text()}" for n, c in enumerate(citations, start=1))


def to_bibtex(citations: list[Citation]) -> str:
    """BibTeX entries (@article, or @misc without a publisher)."""
    entries, taken = [], set()
    for c in citations:
        kind = "article" if c.publisher and c.doi else "misc"
        fields = [("title", c.title), ("author", " and ".join(_authors(c)))]
        fields += [("journal" if kind == "article" else "howpublished", c.publisher), ("year", c.year)]
        body = [f"  {k} = {{{_bib_escape(v)}}}" for k, v in fields if v]
        # DOIs and URLs are verbatim fields in biblatex and Zotero: escaping would break them.
        body += [f"  {k} = {{{v}}}" for k, v in (("doi", c.doi), ("url", c.url)) if v]
        body = ",\n".join(body)
        entries.append(f"@{kind}{{{_key(c, taken)},\n{body}\n}}")
    return "\n\n".join(entries) + "\n"


def to_ris(citations: list[Citation]) -> str:
    """RIS records, readable by Zotero, EndNote and Mendeley."""
    records = []
    for c in citations:
        lines = ["TY  - JOUR" if c.doi else "TY  - GEN", f"TI  - {c.title}"]
        lines += [f"AU  - {a}" for a in _authors(c)]
        lines += [f"PY  - {c.year}"] if c.year else []
        lines += [f"JO  - {c.publisher}"] if c.publisher else []
        lines += [f"DO  - {c.doi}"] if c.doi else []
        lines += [f"UR  - {c.url}"] if c.url else []
        lines += [f"KW  - {t}" for t in c.tags]
        lines.append("ER  - ")
        records.append("\n".join(lines))
    return "\n\n".join(records) + "\n"
