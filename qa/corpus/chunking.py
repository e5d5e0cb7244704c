"""Split a `Document` into `Chunk`s: one per `##` section, long sections split on sentence bounds."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from markdown_it import MarkdownIt

from qa.corpus.documents import LABELLED_BULLET, METADATA_LABELS, Citation, Document

#: Bump when chunk boundaries or embedded text change: the index is then rebuilt.
CHUNKER_VERSION = "5"

_MD = MarkdownIt("commonmark")
_DRUG_MARK = re.compile(r"\s*\U0001f48a")  # the 💊 appended after drug names: noise for search
# No library splits sentences well without downloaded data (nltk punkt, spaCy models), and
# summaries are edited English prose, so a rule on ". " before a capital or digit does well.
_SENTENCE = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]?[A-Z0-9])")

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Section:
    """A headed part of a summary, with its original Markdown text."""

    heading: str
    text: str


@dataclass(frozen=True)
class Chunk:
    """A passage to index: its study, section, the text shown and the text embedded."""

    chunk_id: str
    doc_id: str
    section: str
    text: str
    embed_text: str
    citation: Citation
    part: int = 0


def _heading_text(tokens: list, i: int) -> str:
    return tokens[i + 1].content.strip() if i + 1 < len(tokens) else ""


def sections(doc: Document) -> list[Section]:
    """The `##` sections of a document, found with a Markdown parser.

    Headings inside code blocks or block quotes are text, not sections. A summary without
    `##` sections keeps its text as bold-labelled bullets in the details block; those
    become sections. As a last resort the whole body is one section.
    """
    lines = doc.body.split("\n")
    tokens = _MD.parse(doc.body)
    # `###` under a `##` (the dated entries of a thread page's Timeline) also start a part,
    # named "Timeline › 2025-10-15 - …", so long sections split where their author split them.
    starts = [
        (i, t.map[0], t.map[1], t.tag)
        for i, t in enumerate(tokens)
        if t.type == "heading_open" and t.tag in ("h2", "h3") and t.level == 0 and t.map
    ]
    found = []
    parent = ""
    for n, (i, _, head_end, tag) in enumerate(starts):
        heading = _heading_text(tokens, i)
        if tag == "h2":
            parent = heading
        elif not parent:
            continue  # a ### before any ## is not a section of its own
        else:
            heading = f"{parent} › {heading}"
        end = starts[n + 1][1] if n + 1 < len(starts) else len(lines)
        text = "\n".join(lines[head_end:end]).strip()
        if text:
            found.append(Section(heading, text))
    if found:
        return found
    for t in tokens:
        if t.type == "inline" and t.level == 3:
            match = LABELLED_BULLET.match(t.content.strip())
            if match and match.group("label").strip().rstrip(":").lower() not in METADATA_LABELS:
                value = match.group("value").strip()
                if value:
                    found.append(Section(match.group("label").strip().rstrip(":").strip(), value))
    if found:
        return found
    plain = re.sub(r"</?(details|summary)>", "", doc.body).strip()
    return [Section("Text", plain)] if plain else []


# A full stop after these ends an abbreviation, not a sentence ("Dr. Younger", "et al. (2024)",
# "e.g. IL-6", "59% vs. 28%"); nor does one after a lone initial ("Kiran C. Patel").
_ABBREVIATION = re.compile(
    r"(?:\b(?:Dr|Drs|Mr|Mrs|Ms|Prof|Profs|St|Sr|Jr|vs|v|al|etc|approx|ca|cf|Fig|Figs|No|Nos|Vol|"
    r"Dept|Univ|Inc|Ltd|Co|Corp|resp|incl|e\.g|i\.e)|(?<![\w.])[A-Z])\.$",
    re.I,
)


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences (see `_SENTENCE` for why by hand), never after "Dr." or "et al."."""
    # Cut at each boundary the rule finds, unless the text before it ends in an abbreviation;
    # slices of the original keep each sentence findable in it.
    pieces, start = [], 0
    for gap in _SENTENCE.finditer(text):
        if not _ABBREVIATION.search(text[start : gap.start()]):
            pieces.append(text[start : gap.start()])
            start = gap.end()
    pieces.append(text[start:])
    return [s.strip() for s in pieces if s.strip()]


def _pack(pieces: list[str], budget: int, count: TokenCounter, joiner: str) -> list[str]:
    """Greedily join pieces into groups of at most `budget` tokens."""
    groups: list[str] = []
    current: list[str] = []
    for piece in pieces:
        candidate = joiner.join([*current, piece])
        if current and count(candidate) > budget:
            groups.append(joiner.join(current))
            current = [piece]
        else:
            current.append(piece)
    if current:
        groups.append(joiner.join(current))
    return groups


def split_long(text: str, budget: int, count: TokenCounter) -> list[str]:
    """Split text so each part fits `budget` tokens: paragraphs, then sentences, then words."""
    if count(text) <= budget:
        return [text]
    parts: list[str] = []
    for para in [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]:
        if count(para) <= budget:
            parts.append(para)
            continue
        for sentence in split_sentences(para):
            if count(sentence) <= budget:
                parts.append(sentence)
            else:
                parts.extend(_pack(sentence.split(), budget, count, " "))
    # Re-join neighbours that fit together, paragraphs first.
    return _pack(parts, budget, count, "\n\n")


def embed_text(title: str, heading: str, text: str) -> str:
    """The text given to the model: title and section for context, then the passage."""
    return f"{title}\n{heading}\n{_DRUG_MARK.sub('', text)}"


def word_count(text: str) -> int:
    """A model-free token estimate (about 1.3 word pieces per English word)."""
    return int(len(text.split()) * 1.3) + 1


def chunk_document(doc: Document, max_tokens: int = 256, count: TokenCounter = word_count) -> list[Chunk]:
    """Cut a document into chunks whose embedded text fits `max_tokens` of the model."""
    chunks = []
    citation = doc.citation
    for section in sections(doc):
        overhead = count(embed_text(doc.title, section.heading, ""))
        budget = max(32, max_tokens - overhead)
        for part, text in enumerate(split_long(section.text, budget, count)):
            n = len(chunks)
            chunks.append(
                Chunk(
                    chunk_id=f"{doc.doc_id}#{n}",
                    doc_id=doc.doc_id,
                    section=section.heading,
                    text=text,
                    embed_text=embed_text(doc.title, section.heading, text),
                    citation=citation,
                    part=part,
                )
            )
    return chunks
