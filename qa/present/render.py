"""An `Answer` as safe HTML for the chat, and as clean text to copy: document text never runs as HTML.

Summaries carry a little Markdown (`**bold**`, `*ex vivo*`, links, `&beta;`) and LaTeX (`$VO_{2}$`).
Both are reduced to what a reader should see: Markdown through markdown-it-py with raw HTML off
(so `<script>` in a summary stays text), LaTeX through a small converter (see `math_html`).
"""

from __future__ import annotations

import re
import unicodedata
from html import escape
from urllib.parse import urlencode, urlparse

from markdown_it import MarkdownIt

from qa.corpus.chunking import split_sentences
from qa.corpus.documents import Citation, Document
from qa.models.multilingual import notice, ui_text
from qa.present.answer import CLOSEST, DISCLAIMER, NOT_COVERED, cut_note
from qa.present.highlight import MIN_SIMILARITY, Highlights, Sentence
from qa.search.types import Answer, Filters, StudyHit

# Characters Markdown would act on become entities, so text stays inert wherever it is shown
# (the Gradio Markdown panels render our strings as Markdown).
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
    "{": "&#123;",
    "}": "&#125;",
}
_MARKDOWN.update({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})
_MARKDOWN_RE = re.compile("|".join(re.escape(c) for c in _MARKDOWN))

# Inline Markdown only, raw HTML off: `<b>` in a summary is shown as the text "<b>".
_INLINE = MarkdownIt("commonmark", {"html": False})
_BULLET = re.compile(r"^(\s*)(?:[-*+]|\d{1,3}[.)])\s+", re.M)

# `$…$` as math the way pandoc reads it: no space inside either `$`, and a closing `$` not
# followed by a digit, so "$582 million … US$1 trillion" stays money.
_MATH = re.compile(r"(?<![\w$\\])\$(?=[^\s$])([^$\n]{1,80}?)(?<=[^\s\\$])\$(?!\d)")
_TEX_SYMBOLS = {
    "ge": "≥",
    "geq": "≥",
    "le": "≤",
    "leq": "≤",
    "pm": "±",
    "times": "×",
    "approx": "≈",
    "cdot": "·",
    "sim": "~",
    "neq": "≠",
    "to": "→",
    "rightarrow": "→",
    "infty": "∞",
    "circ": "°",
    "degree": "°",
    "%": "%",
    ",": " ",
    ";": " ",
    " ": " ",
}
_TEX_COMMAND = re.compile(r"\\([A-Za-z]+|[%,; ])")
_TEX_WRAPPER = re.compile(r"\\(?:text|mathrm|mathit|mathbf|operatorname)\s*\{([^{}]*)\}")
_SCRIPT = re.compile(r"([_^])(?:\{([^{}]*)\}|(\S))")
_SUB = str.maketrans("0123456789+-=()aeoxhklmnpst", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₒₓₕₖₗₘₙₚₛₜ")
_SUP = str.maketrans("0123456789+-=()n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿ")


def text_html(text: str) -> str:
    """Document text as inert HTML: escaped, Markdown-neutral, line breaks kept."""
    safe = _MARKDOWN_RE.sub(lambda m: _MARKDOWN[m.group(0)], text)
    return safe.replace("\n", "<br>")


def _tex_symbol(match: re.Match) -> str:
    name = match.group(1)
    if name in _TEX_SYMBOLS:
        return _TEX_SYMBOLS[name]
    case = "CAPITAL" if name[0].isupper() else "SMALL"
    try:  # \gamma, \Delta …: Unicode knows every Greek letter by name
        return unicodedata.lookup(f"GREEK {case} LETTER {name.upper()}")
    except KeyError:
        return name


def _math(tex: str, html: bool) -> str:
    # No library renders LaTeX to text without a browser-side engine or heavy dependency; the
    # summaries use only a few symbols, Greek letters, and sub- and superscripts (see FORMAT.md).
    tex = _TEX_WRAPPER.sub(r"\1", tex)
    tex = _TEX_COMMAND.sub(_tex_symbol, tex)
    out, cursor = [], 0
    for m in _SCRIPT.finditer(tex):
        out.append(_plain_math(tex[cursor : m.start()], html))
        body = (m.group(2) if m.group(2) is not None else m.group(3)).replace("{", "").replace("}", "")
        if html:
            tag = "sub" if m.group(1) == "_" else "sup"
            out.append(f"<{tag}>{escape(body)}</{tag}>" if body else "")
        else:
            table = _SUB if m.group(1) == "_" else _SUP
            fits = all(ord(ch) in table for ch in body)  # Unicode has few sub/superscript letters
            out.append(body.translate(table) if fits else f"{m.group(1)}({body})")
        cursor = m.end()
    out.append(_plain_math(tex[cursor:], html))
    return "".join(out)


def _plain_math(text: str, html: bool) -> str:
    text = text.replace("{", "").replace("}", "")
    return escape(text, quote=False) if html else text


def math_html(tex: str) -> str:
    """LaTeX math as readable HTML: `VO_{2}` → VO<sub>2</sub>, `\\gamma\\delta` → γδ."""
    return _math(tex, html=True)


def math_text(tex: str) -> str:
    """LaTeX math as readable text: `VO_{2}` → VO₂, `Ca^{2+}` → Ca²⁺."""
    return _math(tex, html=False)


def _inline(markdown: str, html: bool) -> str:
    tokens = _INLINE.parseInline(markdown)
    out = []
    for token in tokens[0].children if tokens else []:
        kind = token.type
        if kind == "text":
            out.append(escape(token.content, quote=False) if html else token.content)
        elif kind == "code_inline":
            out.append(f"<code>{escape(token.content)}</code>" if html else token.content)
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "image":  # never load an image named by a summary: its description only
            out.append(escape(token.content) if html else token.content)
        elif html and kind in ("strong_open", "strong_close", "em_open", "em_close"):
            tag = "strong" if kind.startswith("strong") else "em"
            out.append(f"</{tag}>" if kind.endswith("close") else f"<{tag}>")
        # link_open/close: only the link text is kept; a summary cannot add live links.
    return "".join(out)


def _reader(markdown: str, html: bool) -> str:
    markdown = _BULLET.sub(r"\1• ", markdown)
    out, cursor = [], 0
    for m in _MATH.finditer(markdown):
        out.append(_lines(markdown[cursor : m.start()], html))
        out.append(_math(m.group(1), html))
        cursor = m.end()
    out.append(_lines(markdown[cursor:], html))
    text = "".join(out)
    return text.replace("\n", "<br>") if html else text


def _lines(markdown: str, html: bool) -> str:
    # Line by line, so a stray "**" cannot swallow the following lines.
    return "\n".join(_inline(line, html) if line.strip() else line for line in markdown.split("\n"))


def reader_html(markdown: str) -> str:
    """Summary text as safe HTML for a reader: emphasis kept, links and raw HTML as text, math readable."""
    return _reader(markdown, html=True)


def reader_text(markdown: str) -> str:
    """Summary text as plain text: Markdown markers dropped, math readable."""
    return _reader(markdown, html=False)


def marked_html(text: str, sentences: list[Sentence]) -> str:
    """The passage as reader HTML, with the marked sentences wrapped in <mark>."""
    out, cursor = [], 0
    for sentence in sentences:
        at = text.find(sentence.text, cursor)
        if at < 0:
            continue
        out.append(reader_html(text[cursor:at]))
        body = reader_html(sentence.text)
        out.append(f"<mark>{body}</mark>" if sentence.marked else body)
        cursor = at + len(sentence.text)
    out.append(reader_html(text[cursor:]))
    return "".join(out)


def link_html(url: str, label: str, fallback: str | None = None, name: str = "") -> str:
    """A link that opens in a new tab; for a URL that is not http(s), `fallback` (default: the label).

    `name`, when given, is the link's accessible name (it should start with the visible label).
    """
    if not url.lower().startswith(("https://", "http://")):
        return text_html(label if fallback is None else fallback)
    aria = f' aria-label="{escape(name, quote=True)}"' if name else ""
    return (
        f'<a href="{escape(url, quote=True)}" target="_blank" rel="noopener noreferrer"{aria}>'
        f"{escape(label)}</a>"
    )


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
