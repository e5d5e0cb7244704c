"""An `Answer` as safe HTML for the chat, and as clean text to copy: document text never runs as HTML.

Every piece of summary text goes through `qa.present.text` (Markdown and LaTeX reduced to escaped
HTML or plain text); this module lays out the turn, the digest, the study cards and the copy text.
"""

from __future__ import annotations

import re
from html import escape
from urllib.parse import urlencode, urlparse

from qa.corpus.chunking import split_sentences
from qa.corpus.documents import Citation, Document
from qa.models.multilingual import notice, ui_text
from qa.present.answer import CLOSEST, DISCLAIMER, NOT_COVERED, cut_note
from qa.present.highlight import MIN_SIMILARITY, Highlights, Sentence
from qa.present.text import (
    link_html,
    marked_html,
    reader_html,
    reader_text,
    text_html,
)
from qa.search.types import Answer, Filters, StudyHit

_TRIAL_HOSTS = ("clinicaltrials.gov", "clinicaltrials.eu", "clinicaltrialsregister.eu", "drks.de", "isrctn")
_VIDEO_HOSTS = ("youtube.com", "youtu.be", "vimeo.com")
_PREPRINT = re.compile(r"\b(preprint|medrxiv|biorxiv|research square|ssrn)\b", re.I)


def source_kind(citation: Citation) -> str:
    """What the study's link leads to, read from the link and publisher: "Paper (DOI)", "Video" …"""
    host = (urlparse(citation.url).hostname or "").lower()
    on = lambda hosts: any(host == h or host.endswith("." + h) for h in hosts)  # noqa: E731
    if not citation.url:
        return ""
    if on(_VIDEO_HOSTS):
        return "Video"
    if on(_TRIAL_HOSTS):
        return "Trial registration"
    if citation.doi:
        preprint = _PREPRINT.search(citation.publisher) or citation.doi.startswith("10.1101/")
        return "Preprint (DOI)" if preprint else "Paper (DOI)"
    if "News" in citation.tags:
        return "News"
    if on(("pubmed.ncbi.nlm.nih.gov", "ncbi.nlm.nih.gov")):
        return "Paper (PubMed)"
    if on(("medrxiv.org", "biorxiv.org", "researchsquare.com")):
        return "Preprint"
    if on(("patents.google.com",)):
        return "Patent"
    if on(("s4me.info", "phoenixrising.me", "reddit.com")):
        return "Forum post"
    return "Web page"


# Study designs a summary names in so many words. Sentences about what should happen next
# ("a randomised trial is needed") say nothing about this study, so they are skipped.
_DESIGNS = [
    ("Systematic review", r"\bsystematic (literature )?review\b"),
    ("Meta-analysis", r"\bmeta-analys[ie]s\b"),
    ("Review", r"\b(narrative|literature|scoping|umbrella) review\b"),
    ("Randomised", r"\brandomi[sz]ed\b"),
    ("Placebo-controlled", r"\bplacebo[- ]controlled\b"),
    ("Double-blind", r"\bdouble[- ]blind(ed)?\b"),
    ("Open-label", r"\bopen[- ]label\b"),
    ("Observational", r"\b(observational|cohort study|cross-sectional|case-control)\b"),
    ("Case report", r"\bcase (report|series)\b"),
    ("Animal study", r"\b(mice|mouse|murine|rats|rodents?)\b"),
    ("Lab study (in vitro)", r"\bin vitro\b"),
]
_FUTURE = re.compile(
    r"\b(future|should|needed|need|would|could|recommend\w*|call(s|ed)? for|plan\w*)\b", re.I
)


def study_types(texts: list[str]) -> list[str]:
    """The study designs the summary itself names ("Randomised", "Animal study" …), never guessed."""
    found = []
    sentences = [s for t in texts for s in split_sentences(t) if not _FUTURE.search(s)]
    for name, pattern in _DESIGNS:
        if any(re.search(pattern, s, re.I) for s in sentences):
            found.append(name)
    if {"Systematic review", "Meta-analysis", "Review"} & set(found):
        # A review names the designs of the studies it pooled; those are not its own.
        found = [n for n in found if n in ("Systematic review", "Meta-analysis", "Review")]
    return found


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


def digest(answer: Answer, highlights: Highlights, top: int = 3, per_study: int = 2) -> list[tuple[int, str]]:
    """(study rank, sentence): the marked sentences of the top studies, best first; quoted, never made up."""
    if not answer.covered:
        return []
    out = []
    for study in answer.studies[:top]:
        # The first passage only: it is the one shown open on the card, so every quote can be
        # found there (the others stay folded until asked for).
        passages = highlights.get(study.rank, [])[:1]
        # A one-sentence passage is never marked (that would mark all of it), but its sentence
        # may still be the study's best answer.
        found = [
            s for p in passages for s in p if s.marked or (len(p) == 1 and s.similarity >= MIN_SIMILARITY)
        ]
        for sentence in sorted(found, key=lambda s: -s.similarity)[:per_study]:
            out.append((study.rank, sentence.text))
    return out


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


def study_html(
    study: StudyHit,
    highlights: list[list[Sentence]] | None = None,
    turn: str = "a",
    types: list[str] | None = None,
    full: list[tuple[str, str]] | None = None,
) -> str:
    """One study card: numbered heading, source kind, study type, link, best passage; the rest folds."""
    c = study.citation
    anchor = f"{turn}-s{study.rank}"
    parts = [
        f'<article class="qa-study" id="{anchor}" data-rank="{study.rank}" aria-labelledby="{anchor}-h">',
        f'<h3 class="qa-cite" id="{anchor}-h" tabindex="-1"><span class="qa-num">{study.rank}.</span> '
        f'<span class="qa-label">{text_html(c.label)}</span> — <span class="qa-title">{text_html(c.title)}</span></h3>',
        f'<p class="qa-meta">{_meta(c, types or [], c.label)}</p>',
    ]
    passages = []
    for n, passage in enumerate(study.passages):
        sentences = highlights[n] if highlights and n < len(highlights) else []
        body = marked_html(passage.chunk.text, sentences) if sentences else reader_html(passage.chunk.text)
        passages.append(
            f'<h4 class="qa-section">{text_html(passage.chunk.section)}</h4>'
            f'<blockquote class="qa-passage">{body}</blockquote>'
        )
    parts.append(passages[0] if passages else "")
    more = passages[1:]
    if full:
        more.append(
            '<div class="qa-full"><h4 class="qa-section">The whole summary</h4>'
            + "".join(
                f'<h5 class="qa-section">{text_html(h)}</h5><div class="qa-passage">{reader_html(t)}</div>'
                for h, t in full
            )
            + "</div>"
        )
    if more:
        what = "another passage and the whole summary" if len(passages) > 1 else "the whole summary"
        if not full:
            what = "another passage"
        parts.append(f'<details class="qa-more"><summary>Show {what}</summary>{"".join(more)}</details>')
    if study.also:
        parts.append(f'<p class="qa-also">{also_text(len(study.also))}</p>')
    parts.append("</article>")
    return "\n".join(parts)


def answer_html(
    answer: Answer,
    highlights: Highlights | None = None,
    turn: str = "a",
    types: dict[str, list[str]] | None = None,
    full: dict[str, list[tuple[str, str]]] | None = None,
    matching: int | None = None,
) -> str:
    """The reply: digest of quoted sentences, notes, study cards, filters in words, the disclaimer.

    `matching` is how many studies pass the filters; 0 means the filters are why nothing came back.
    """
    highlights, types, full = highlights or {}, types or {}, full or {}
    parts = []
    lang = getattr(answer, "language", "en")
    if notice(lang):  # asked in another language: say, in it, that the summaries are English
        parts.append(f'<p class="qa-filters" lang="{text_html(lang)}">{text_html(notice(lang))}</p>')
    not_covered, closest = ui_text(lang, "not_covered"), ui_text(lang, "closest")
    f = answer.filters
    if not answer.studies and f.active and matching == 0:
        parts.append(
            f'<p class="qa-notcovered"><strong>No study matches these filters</strong> '
            f"({text_html(filters_text(f))}). Clear or widen the filters to search every summary.</p>"
        )
    elif not answer.studies:
        parts.append(
            f'<p class="qa-notcovered"><strong>{text_html(not_covered)}</strong> {text_html(answer.reason)}</p>'
        )
    elif not answer.covered:
        parts.append(
            f'<p class="qa-notcovered"><strong>{text_html(not_covered)}</strong> {text_html(answer.reason)}'
            f"<br>{text_html(closest)}</p>"
        )
    short = digest(answer, highlights)
    if short:
        labels = {s.rank: s.citation.label for s in answer.studies}
        items = "".join(
            f'<li><q>{reader_html(sentence)}</q> <a class="qa-ref" id="{turn}-r{n}" href="#{turn}-s{rank}" '
            f'aria-label="[{rank}] {escape(labels[rank], quote=True)}">[{rank}]</a></li>'
            for n, (rank, sentence) in enumerate(short, start=1)
        )
        parts.append(
            f'<section class="qa-digest" aria-labelledby="{turn}-d"><h3 id="{turn}-d" class="qa-digest-h">'
            f"In short, quoted from the summaries</h3><ul>{items}</ul></section>"
        )
    for study in answer.studies:
        parts.append(
            study_html(
                study, highlights.get(study.rank), turn, types.get(study.doc_id), full.get(study.doc_id)
            )
        )
    if f.active:
        count = (
            ""
            if matching is None
            else f" ({matching} {'summary matches' if matching == 1 else 'summaries match'})"
        )
        parts.append(f'<p class="qa-filters">Filters: {text_html(filters_text(f))}{count}</p>')
    parts.append(f'<p class="qa-disclaimer">{DISCLAIMER}</p>')
    return "\n".join(parts)


def answer_text(
    answer: Answer,
    highlights: Highlights | None = None,
    question: str = "",
    types: dict[str, list[str]] | None = None,
) -> str:
    """The reply as Markdown to copy: the question, the quoted digest, numbered citations with links."""
    highlights, types = highlights or {}, types or {}
    lines = [f"**Question:** {question or answer.question}"]
    if question and answer.question != question:
        lines.append(f"(searched as: {answer.question})")
    if answer.cut:
        lines.append(f"({cut_note(answer.cut)}.)")
    lines.append("")
    if not answer.studies:
        return "\n".join([*lines, f"{NOT_COVERED} {answer.reason}".strip(), "", DISCLAIMER])
    if not answer.covered:
        lines += [f"{NOT_COVERED} {answer.reason}".strip(), ""]
    short = digest(answer, highlights)
    if short:
        lines.append("In short, quoted from the summaries:")
        lines += [f"- “{reader_text(sentence)}” [{rank}]" for rank, sentence in short]
        lines.append("")
    lines.append("Studies:" if answer.covered else CLOSEST)
    for s in answer.studies:
        c = s.citation
        kind = source_kind(c)
        design = f" Study type: {', '.join(types.get(s.doc_id, []))}." if types.get(s.doc_id) else ""
        where = f" {kind}: {c.url}" if c.url else ""
        lines.append(f"[{s.rank}] {c.label}. {c.title}. {c.publisher}.{design}{where}".replace("..", "."))
    if answer.filters.active:
        lines += ["", f"Filters: {filters_text(answer.filters)}"]
    lines += ["", DISCLAIMER]
    return "\n".join(lines)


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
