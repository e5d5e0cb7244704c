"""An `Answer` as safe HTML for the chat: every piece of document text is escaped."""

from __future__ import annotations

import re
from html import escape

from qa.answer import CLOSEST, DISCLAIMER, NOT_COVERED
from qa.documents import Document
from qa.highlight import Sentence
from qa.search import Answer, StudyHit

# The chat renders Markdown around our HTML: characters Markdown would act on become entities,
# and line breaks become <br> so a blank line cannot end the HTML block.
_MARKDOWN = {
    "*": "&#42;",
    "_": "&#95;",
    "[": "&#91;",
    "]": "&#93;",
    "`": "&#96;",
    "#": "&#35;",
    "~": "&#126;",
    "|": "&#124;",
    "$": "&#36;",
    "\\": "&#92;",
}
_MARKDOWN.update({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})
_MARKDOWN_RE = re.compile("|".join(re.escape(c) for c in _MARKDOWN))


def text_html(text: str) -> str:
    """Document text as inert HTML: escaped, Markdown-neutral, line breaks kept."""
    safe = _MARKDOWN_RE.sub(lambda m: _MARKDOWN[m.group(0)], text)
    return safe.replace("\n", "<br>")


def marked_html(text: str, sentences: list[Sentence]) -> str:
    """The original passage, escaped, with the marked sentences wrapped in <mark>."""
    out, cursor = [], 0
    for sentence in sentences:
        at = text.find(sentence.text, cursor)
        if at < 0:
            continue
        out.append(text_html(text[cursor:at]))
        body = text_html(sentence.text)
        out.append(f"<mark>{body}</mark>" if sentence.marked else body)
        cursor = at + len(sentence.text)
    out.append(text_html(text[cursor:]))
    return "".join(out)


def link_html(url: str, label: str, fallback: str | None = None) -> str:
    """A link that opens in a new tab; for a URL that is not http(s), `fallback` (default: the label)."""
    if not url.lower().startswith(("https://", "http://")):
        return text_html(label if fallback is None else fallback)
    return (
        f'<a href="{escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">{escape(label)}</a>'
    )


def study_html(study: StudyHit, highlights: list[list[Sentence]] | None = None) -> str:
    """One numbered study: citation heading, meta line, tags, and its passage(s)."""
    c = study.citation
    tags = "".join(f'<span class="qa-tag">{text_html(t)}</span>' for t in c.tags)
    meta = " · ".join(
        x
        for x in (
            text_html(c.publisher),
            text_html(c.published[:4] or c.year),
            link_html(c.url, "Read the paper", ""),
        )
        if x
    )
    parts = [
        f'<div class="qa-study" data-rank="{study.rank}">',
        f'<div class="qa-cite"><span class="qa-num">{study.rank}.</span> '
        f"<strong>{text_html(c.label)}</strong> — {text_html(c.title)}</div>",
        f'<div class="qa-meta">{meta} {tags}</div>',
    ]
    for n, passage in enumerate(study.passages):
        sentences = highlights[n] if highlights and n < len(highlights) else []
        body = marked_html(passage.chunk.text, sentences) if sentences else text_html(passage.chunk.text)
        parts.append(f'<div class="qa-section">{text_html(passage.chunk.section)}</div>')
        parts.append(f'<blockquote class="qa-passage">{body}</blockquote>')
    if study.also:
        parts.append(f'<div class="qa-also">Also summarised as: {text_html(", ".join(study.also))}</div>')
    parts.append("</div>")
    return "\n".join(parts)


def answer_html(answer: Answer, highlights: dict[int, list[list[Sentence]]] | None = None) -> str:
    """The whole reply: a not-covered note if needed, the studies, filters used, the disclaimer."""
    highlights = highlights or {}
    parts = []
    if not answer.studies:
        parts.append(
            f'<p class="qa-notcovered"><strong>{NOT_COVERED}</strong> {text_html(answer.reason)}</p>'
        )
    elif not answer.covered:
        parts.append(
            f'<p class="qa-notcovered"><strong>{NOT_COVERED}</strong> {text_html(answer.reason)}<br>{CLOSEST}</p>'
        )
    for study in answer.studies:
        parts.append(study_html(study, highlights.get(study.rank)))
    f = answer.filters
    if f.active:
        shown = []
        if f.tags:
            shown.append("tags: " + ", ".join(f.tags))
        if f.date_from or f.date_to:
            shown.append(f"published {f.date_from or '…'} to {f.date_to or '…'}")
        parts.append(f'<p class="qa-filters">Filters: {text_html("; ".join(shown))}</p>')
    parts.append(f'<p class="qa-disclaimer">{DISCLAIMER}</p>')
    return "\n".join(parts)


def source_html(doc: Document, parts: list[tuple[str, str]]) -> str:
    """A whole summary for the source view: metadata, then every section, all escaped."""
    c = doc.citation
    rows = [
        ("Authors", doc.authors),
        ("Institutes", doc.institutes),
        ("Publisher", doc.publisher),
        ("Published", doc.published),
        ("Tags", ", ".join(doc.tags)),
        *doc.extra.items(),
    ]
    meta = "".join(f"<li><strong>{text_html(k)}:</strong> {text_html(v)}</li>" for k, v in rows if v)
    body = "".join(
        f'<h4 class="qa-section">{text_html(h)}</h4><div class="qa-passage">{text_html(t)}</div>'
        for h, t in parts
    )
    return (
        f'<div class="qa-source"><h3>{text_html(c.label)} — {text_html(c.title)}</h3>'
        f"<p>{link_html(c.url, c.url or 'no link given')}</p><ul>{meta}</ul>{body}"
        f'<p class="qa-also">File: {text_html(doc.doc_id)}</p></div>'
    )
