"""Read a folder of summaries into `Document`s: frontmatter, the <details> block, mojibake repair."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import frontmatter
import ftfy
import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from qa.config import CATEGORY_TAGS
from qa.errors import DocumentError

SUFFIXES = (".md", ".markdown")

# Keep curly quotes and full-width forms: we only want encoding damage undone.
_FTFY = ftfy.TextFixerConfig(uncurl_quotes=False, fix_character_width=False)

_MD = MarkdownIt("commonmark")

# Details-block labels that hold metadata; any other bold label is summary text.
METADATA_LABELS = {
    "authors": "authors",
    "author": "authors",
    "researcher": "authors",
    "researchers": "authors",
    "institutes": "institutes",
    "institute": "institutes",
    "publisher": "publisher",
    "source": "publisher",
    "journal": "publisher",
    "link": "link",
    "doi": "link",
}
LABELLED_BULLET = re.compile(r"^\*\*(?P<label>[^*]+?)\s*:?\s*\*\*\s*:?\s*(?P<value>.*)$", re.S)
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>()\]]+[^\s\"<>()\].,;])")
_YEAR = re.compile(r"\((\d{4})[a-z]?\)|\((n\.d\.)\)")
_DATE_TAG = re.compile(r"(\d{4}-\d{2}-\d{2})")
_URL = re.compile(r"https?://[^\s)>\]]+")


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


#: Fields a `Document` shares with its `Citation`.
_CITED = ("label", "title", "authors", "year", "publisher", "link", "doi", "tags", "published")


@dataclass(frozen=True)
class Document:
    """One summary file, parsed and repaired."""

    doc_id: str
    path: Path
    title: str
    body: str
    content_hash: str
    tags: tuple[str, ...] = ()
    added: str = ""
    created: str = ""
    published: str = ""
    label: str = ""
    year: str = ""
    authors: str = ""
    institutes: str = ""
    publisher: str = ""
    link: str = ""
    doi: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_citation(cls, doc_id: str, path: Path, c: Citation) -> Document:
        """A body-less document from stored citation fields (when its file is unreadable)."""
        return cls(doc_id=doc_id, path=path, body="", content_hash="", **{f: getattr(c, f) for f in _CITED})

    @property
    def citation(self) -> Citation:
        """The study's citation fields."""
        return Citation(**{f: getattr(self, f) for f in _CITED})


@dataclass(frozen=True)
class Problem:
    """A file that was skipped, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class LoadResult:
    """Everything read from a folder: the documents and the files that were skipped."""

    documents: tuple[Document, ...]
    problems: tuple[Problem, ...]


def repair_text(text: str) -> str:
    """Undo mojibake (UTF-8 read as a legacy code page) and normalise to NFC."""
    return unicodedata.normalize("NFC", ftfy.fix_text(text, config=_FTFY))


def normalise_tag(raw: object) -> tuple[str, str]:
    """Split a raw tag into (kind, value): ('category', 'Landmark') or ('added', '2025-12-25').

    The emoji in front is decoration and may be damaged ("â Landmark"), so only the
    words count. Unknown words are kept as a category in title case.
    """
    text = repair_text(str(raw)).strip()
    date = _DATE_TAG.search(text)
    if date and not re.search(r"[A-Za-z]", text):
        return "added", date.group(1)
    words = re.findall(r"[A-Za-z][A-Za-z&' -]*", text)
    word = words[-1].strip() if words else text
    for known in CATEGORY_TAGS:
        if word.lower() == known.lower():
            return "category", known
    return "category", word.title()


def _as_date(value: object) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    text = str(value or "").strip()
    match = re.match(r"\d{4}-\d{2}-\d{2}", text)
    return match.group(0) if match else ""


def _inline_links(token: Token) -> list[str]:
    hrefs = [str(child.attrs.get("href", "")) for child in token.children or [] if child.type == "link_open"]
    return hrefs if hrefs else hrefs + _URL.findall(token.content)


def _strip_md(text: str) -> str:
    """Markdown link/emphasis markup to plain text, for metadata values."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[*_`]+", "", text).strip()


def _details(body: str) -> tuple[str, dict[str, str], list[str]]:
    """Return (summary label, labelled fields, links) from the <details> block, if any."""
    label, fields, links = "", {}, []
    inside = False
    for token in _MD.parse(body):
        if token.type == "html_block":
            if "<details" in token.content:
                inside = True
                found = re.search(r"<summary>(.*?)</summary>", token.content, re.S)
                label = found.group(1).strip() if found else label
            if "</details>" in token.content:
                inside = False
            continue
        if token.type == "heading_open" and token.level == 0:
            inside = False
        if not inside or token.type != "inline" or token.level != 3:
            continue
        links.extend(_inline_links(token))
        match = LABELLED_BULLET.match(token.content.strip())
        if match:
            key = match.group("label").strip().rstrip(":").strip()
            fields.setdefault(key, match.group("value").strip())
    return label, fields, links


def _overview_fields(body: str) -> dict[str, str]:
    """Bold-labelled bullets anywhere in the body (trial entries keep Link/Sponsor there)."""
    fields: dict[str, str] = {}
    for token in _MD.parse(body):
        if token.type == "inline":
            match = LABELLED_BULLET.match(token.content.strip())
            if match:
                fields.setdefault(match.group("label").strip().rstrip(":"), match.group("value"))
    return fields


def _pick_link(fields: dict[str, str], links: list[str]) -> tuple[str, str]:
    """(link, doi) from a Link field, else the first link seen."""
    raw = next((v for k, v in fields.items() if METADATA_LABELS.get(k.lower()) == "link"), "")
    urls = _inline_links(_MD.parseInline(raw)[0]) if raw else []
    link = urls[0] if urls else (links[0] if links else "")
    if "doi.org/10." in link:
        return link, unquote(link.split("doi.org/", 1)[1]).rstrip(".")
    doi_match = _DOI.search(raw)
    # A DOI inside a publisher URL is followed by page names, not part of the DOI.
    doi = (
        re.sub(r"/(abstract|full|fulltext|pdf|epdf|html|meta)$", "", doi_match.group(1)) if doi_match else ""
    )
    return link, doi


def parse_document(path: Path, raw: bytes) -> Document:
    """Parse one summary's bytes; raise `DocumentError` naming the problem."""
    if not raw.strip():
        raise DocumentError(path, "the file is empty")
    if b"\x00" in raw:
        raise DocumentError(path, "binary data (NUL bytes), not a text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(path, f"not UTF-8 text (byte {exc.start})") from None
    text = repair_text(text.replace("\r\n", "\n"))
    if not text.lstrip().startswith("---"):
        raise DocumentError(path, "no YAML frontmatter (the file must start with '---')")
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        raise DocumentError(path, f"broken YAML frontmatter: {reason}") from None
    meta = post.metadata
    if not isinstance(meta, dict) or not meta:
        raise DocumentError(path, "empty or unreadable YAML frontmatter")
    title = str(meta.get("title") or "").strip()
    if not title:
        raise DocumentError(path, "the frontmatter has no title")
    body = post.content
    if not body.strip():
        raise DocumentError(path, "the summary has no text after the frontmatter")

    tags, added = [], ""
    raw_tags = meta.get("tags") or []
    for tag in raw_tags if isinstance(raw_tags, list) else [raw_tags]:
        kind, value = normalise_tag(tag)
        if kind == "added":
            added = value
        elif value and value not in tags:
            tags.append(value)

    label, fields, links = _details(body)
    if not fields:
        fields = _overview_fields(body)
    known = {METADATA_LABELS[k.lower()]: v for k, v in fields.items() if k.lower() in METADATA_LABELS}
    link, doi = _pick_link(fields, links)
    created = _as_date(meta.get("created") or meta.get("date"))
    published = _as_date(meta.get("published")) or created
    year_match = _YEAR.search(label)
    year = (year_match.group(1) or "") if year_match else ""
    year = year or (published[:4] if not year_match else "")
    if not label:
        sponsor = _strip_md(fields.get("Sponsor / Lead", "") or fields.get("Sponsor", ""))
        label = f"{sponsor or title[:40]} ({year or 'n.d.'})"
    extra = {
        _strip_md(k): _strip_md(v)
        for k, v in fields.items()
        if k.lower() not in METADATA_LABELS and len(v) < 300
    }
    return Document(
        doc_id=path.name,
        path=path,
        title=title,
        body=body,
        content_hash=hashlib.sha256(raw).hexdigest(),
        tags=tuple(tags),
        added=added,
        created=created,
        published=published,
        label=label,
        year=year,
        authors=_strip_md(known.get("authors", "")),
        institutes=_strip_md(known.get("institutes", "")),
        publisher=_strip_md(known.get("publisher", "")),
        link=link,
        doi=doi,
        extra=extra,
    )


def load_document(path: Path) -> Document:
    """Read and parse one summary file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentError(path, f"cannot be read ({exc.strerror})") from None
    return parse_document(path, raw)


def summary_files(folder: Path) -> list[Path]:
    """The summary files in a folder (not recursive), sorted by name."""
    if not folder.is_dir():
        raise DocumentError(folder, "is not a folder of summaries")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def load_folder(folder: Path, files: Iterable[Path] | None = None) -> LoadResult:
    """Load every summary in `folder`; unreadable files become `Problem`s, not exceptions."""
    documents, problems = [], []
    for path in files if files is not None else summary_files(folder):
        try:
            documents.append(load_document(path))
        except DocumentError as exc:
            problems.append(Problem(path, exc.reason))
    return LoadResult(tuple(documents), tuple(problems))
