"""Summary text made safe to show: Markdown and LaTeX reduced to escaped HTML or plain text.

Summaries carry a little Markdown (`**bold**`, `*ex vivo*`, links, `&beta;`) and LaTeX (`$VO_{2}$`).
Both are reduced to what a reader should see: Markdown through markdown-it-py with raw HTML off
(so `<script>` in a summary stays text), LaTeX through a small converter (see `math_html`)."""

from __future__ import annotations

import re
import unicodedata
from html import escape

from markdown_it import MarkdownIt

from qa.present.view import Sentence

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
