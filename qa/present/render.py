"""An `Answer` as safe HTML for the chat, and as clean text to copy: document text never runs as HTML.

Every piece of summary text goes through `qa.present.text` (Markdown and LaTeX reduced to escaped
HTML or plain text); this module lays out the turn, the digest, the study cards and the copy text.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from qa.corpus.documents import Citation, Document
from qa.corpus.kinds import source_kind
from qa.present.answer import cut_note
from qa.present.text import (
    link_html,
    marked_html,
    reader_html,
    reader_text,
    text_html,
)
from qa.present.view import AnswerView, StudyView
from qa.search.types import Filters


def filters_text(filters: Filters) -> str:
    """The filters in words: "tagged Treatment; published 2025 or later"."""
    parts = []
    if filters.tags:
        parts.append("tagged " + " or ".join(filters.tags))
    start = filters.date_from
    end = filters.date_to.replace("-99", "")  # parse_filters pads "2024" to "2024-99" to end the year
    if start and end:
        parts.append(f"published in {start}" if start == end else f"published {start} to {end}")
    elif start:
        parts.append(f"published {start} or later")
    elif end:
        parts.append(f"published {end} or earlier")
    return "; ".join(parts)


def _meta(c: Citation, types: list[str], label: str) -> str:
    kind = source_kind(c)
    link = link_html(c.url, kind, "", name=f"{kind}: {label}") if kind else ""
    parts = [
        f'<span class="qa-type">{text_html(", ".join(types))} (as the summary says)</span>' if types else "",
        text_html(c.publisher),
        text_html(c.year or c.published[:4]),  # the study's year; `published` dates the summary
        link,
    ]
    tags = "".join(f' <span class="qa-tag">{text_html(t)}</span>' for t in c.tags)
    return " · ".join(p for p in parts if p) + tags


def also_text(others: int) -> str:
    """How many more summaries of the same study there are, in words (file names mean nothing to readers)."""
    return (
        "Also summarised once more in this collection."
        if others == 1
        else (f"Also summarised {others} more times in this collection.")
    )


def study_html(study: StudyView, turn: str = "a") -> str:
    """One study card: numbered heading, source kind, study type, link, best passage; the rest folds."""
    c = study.citation
    anchor = f"{turn}-s{study.rank}"
    parts = [
        f'<article class="qa-study" id="{anchor}" data-rank="{study.rank}" aria-labelledby="{anchor}-h">',
        f'<h3 class="qa-cite" id="{anchor}-h" tabindex="-1"><span class="qa-num">{study.rank}.</span> '
        f'<span class="qa-label">{text_html(c.label)}</span> — <span class="qa-title">{text_html(c.title)}</span></h3>',
        f'<p class="qa-meta">{_meta(c, list(study.types), c.label)}</p>',
    ]
    passages = []
    for passage in study.passages:
        sentences = list(passage.sentences)
        body = marked_html(passage.text, sentences) if sentences else reader_html(passage.text)
        passages.append(
            f'<h4 class="qa-section">{text_html(passage.section)}</h4>'
            f'<blockquote class="qa-passage">{body}</blockquote>'
        )
    parts.append(passages[0] if passages else "")
    more = passages[1:]
    if study.full:
        more.append(
            '<div class="qa-full"><h4 class="qa-section">The whole summary</h4>'
            + "".join(
                f'<h5 class="qa-section">{text_html(h)}</h5><div class="qa-passage">{reader_html(t)}</div>'
                for h, t in study.full
            )
            + "</div>"
        )
    if more:
        what = "another passage and the whole summary" if len(passages) > 1 else "the whole summary"
        if not study.full:
            what = "another passage"
        parts.append(f'<details class="qa-more"><summary>Show {what}</summary>{"".join(more)}</details>')
    if study.also:
        parts.append(f'<p class="qa-also">{also_text(len(study.also))}</p>')
    parts.append("</article>")
    return "\n".join(parts)


def _verdict_html(view: AnswerView, filters: Filters, matching: int | None) -> str:
    """Why nothing, or only the closest passages, came back ("" when the studies answer)."""
    not_covered, closest = view.text("not_covered"), view.text("closest")
    if not view.studies and filters.active and matching == 0:
        return (
            f'<p class="qa-notcovered"><strong>No study matches these filters</strong> '
            f"({text_html(filters_text(filters))}). Clear or widen the filters to search every summary.</p>"
        )
    if view.preparing:  # nothing searched yet: the reason, in the question's language, says why
        return f'<p class="qa-notcovered">{text_html(view.reason)}</p>'
    if not view.studies:
        return (
            f'<p class="qa-notcovered"><strong>{text_html(not_covered)}</strong> {text_html(view.reason)}</p>'
        )
    if not view.covered:
        return (
            f'<p class="qa-notcovered"><strong>{text_html(not_covered)}</strong> {text_html(view.reason)}'
            f"<br>{text_html(closest)}</p>"
        )
    return ""


def _digest_html(view: AnswerView, turn: str) -> str:
    labels = {s.rank: s.citation.label for s in view.studies}
    items = "".join(
        f'<li><q>{reader_html(q.text)}</q> <a class="qa-ref" id="{turn}-r{n}" href="#{turn}-s{q.rank}" '
        f'aria-label="[{q.rank}] {escape(labels[q.rank], quote=True)}">[{q.rank}]</a></li>'
        for n, q in enumerate(view.digest, start=1)
    )
    return (
        f'<section class="qa-digest" aria-labelledby="{turn}-d"><h3 id="{turn}-d" class="qa-digest-h">'
        f"{text_html(view.text('in_short'))}</h3><ul>{items}</ul></section>"
    )


def answer_html(view: AnswerView, turn: str = "a", matching: int | None = None) -> str:
    """The reply: digest of quoted sentences, notes, study cards, filters in words, the disclaimer.

    `matching` is how many studies pass the filters; 0 means the filters are why nothing came back.
    """
    parts = []
    lang = view.language
    if view.notice:  # asked in another language: say, in it, that the summaries are English
        parts.append(f'<p class="qa-filters" lang="{text_html(lang)}">{text_html(view.notice)}</p>')
    f = filters_of(view)
    verdict = _verdict_html(view, f, matching)
    if verdict:
        parts.append(verdict)
    if view.digest:
        parts.append(_digest_html(view, turn))
    parts.extend(study_html(study, turn) for study in view.studies)
    if f.active:
        count = (
            ""
            if matching is None
            else f" ({matching} {'summary matches' if matching == 1 else 'summaries match'})"
        )
        parts.append(f'<p class="qa-filters">Filters: {text_html(filters_text(f))}{count}</p>')
    parts.append(f'<p class="qa-disclaimer">{text_html(view.text("disclaimer"))}</p>')
    return "\n".join(parts)


def answer_text(view: AnswerView, question: str = "") -> str:
    """The reply as Markdown to copy: the question, the quoted digest, numbered citations with links."""
    lines = [f"**Question:** {question or view.question}"]
    if question and view.question != question:
        lines.append(f"(searched as: {view.question})")
    if view.cut:
        lines.append(f"({cut_note(view.cut)}.)")
    lines.append("")
    not_covered, disclaimer = view.text("not_covered"), view.text("disclaimer")
    if view.preparing:
        return "\n".join([*lines, view.reason])
    if not view.studies:
        return "\n".join([*lines, f"{not_covered} {view.reason}".strip(), "", disclaimer])
    if not view.covered:
        lines += [f"{not_covered} {view.reason}".strip(), ""]
    if view.digest:
        lines.append(view.text("in_short") + ":")
        lines += [f"- “{reader_text(q.text)}” [{q.rank}]" for q in view.digest]
        lines.append("")
    lines.append(view.text("studies") + ":" if view.covered else view.text("closest"))
    for s in view.studies:
        c = s.citation
        kind = s.source_kind
        design = f" Study type: {', '.join(s.types)}." if s.types else ""
        where = f" {kind}: {c.url}" if c.url else ""
        lines.append(f"[{s.rank}] {c.label}. {c.title}. {c.publisher}.{design}{where}".replace("..", "."))
    f = filters_of(view)
    if f.active:
        lines += ["", f"Filters: {filters_text(f)}"]
    lines += ["", disclaimer]
    return "\n".join(lines)


def filters_of(view: AnswerView) -> Filters:
    """The view's filters as the search's type (for wording them)."""
    f = view.filters or {}
    return Filters(tuple(f.get("tags", ())), f.get("date_from", ""), f.get("date_to", ""))


def share_query(question: str, filters: Filters | None = None, sort: str = "") -> str:
    """The `?q=…` part of a link that opens the app and asks `question` with the same filters."""
    pairs = [("q", question)]
    if filters:
        pairs += [("tag", t) for t in filters.tags]
        if filters.date_from:
            pairs.append(("from", filters.date_from))
        if filters.date_to:
            pairs.append(("to", filters.date_to.replace("-99", "")))
    if sort:
        pairs.append(("sort", sort))
    return "?" + urlencode(pairs)


def turn_html(
    turn: str,
    question: str,
    body: str,
    note: str = "",
    copy: str = "",
    share: str = "",
    pending: bool = False,
) -> str:
    """One exchange: the question as a heading, a note on how it was read, the reply, copy and share."""
    actions = ""
    if copy or share:
        buttons = []
        if copy:
            buttons.append(
                f'<button type="button" class="qa-copy" data-copy="{escape(copy, quote=True)}">Copy answer</button>'
            )
        if share:
            buttons.append(
                f'<button type="button" class="qa-share" data-share="{escape(share, quote=True)}">'
                "Copy link to this answer</button>"
            )
        actions = (
            f'<div class="qa-actions">{"".join(buttons)}<span class="qa-done" role="status"></span></div>'
        )
    note_html = f'<p class="qa-note">{note}</p>' if note else ""
    share_attr = f' data-share="{escape(share, quote=True)}"' if share else ""
    return (
        f'<section class="qa-turn{" qa-pending" if pending else ""}" id="{turn}" aria-labelledby="{turn}-q"'
        f"{share_attr}>"
        f'<h2 class="qa-question" id="{turn}-q" tabindex="-1"><span class="qa-you">You asked:</span> '
        f'{text_html(question)}</h2>{note_html}<div class="qa-body">{body}</div>{actions}</section>'
    )


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
        f'<h4 class="qa-section">{text_html(h)}</h4><div class="qa-passage">{reader_html(t)}</div>'
        for h, t in parts
    )
    kind = source_kind(c) or "Link"
    return (
        f'<div class="qa-source"><h3>{text_html(c.label)} — {text_html(c.title)}</h3>'
        f"<p>{link_html(c.url, f'{kind}: {c.url}', c.url or 'no link given')}</p><ul>{meta}</ul>{body}"
        "</div>"
    )
