"""Data the app's handlers show, read from the service.

Matching counts, study types, whole summaries, year choices and citation exports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr

from qa.corpus.citations import to_bibtex, to_ris
from qa.corpus.kinds import study_types
from qa.present.answer import DISCLAIMER
from qa.present.render import filters_text, source_html
from qa.present.text import text_html
from qa.search.types import Answer, Filters
from qa.serve.inputs import ANY
from qa.serve.service import Service

# Sections that say how a study was done; "Discussion" and "Conclusion" talk about other and
# future studies, so a design named there is not this study's.
METHOD_SECTIONS = (
    "Summary",
    "What was researched?",
    "How was it researched?",
    "Overview",
    "Purpose of the Trial",
    "Trial Design & Procedure",
)


def export_citations(kind: str, doc_ids: list[str], service: Service) -> Any:
    """The download box showing a BibTeX or RIS file of the cited studies (hidden while empty)."""
    path = write_citations(kind, doc_ids, service)
    # Shown only with a file: axe finds a prohibited aria attribute on Gradio's empty file box.
    return gr.update(value=path, visible=path is not None)


def write_citations(kind: str, doc_ids: list[str], service: Service) -> str | None:
    """A BibTeX or RIS file of the cited studies, or None (and a warning) when none are cited yet."""
    citations = service.citations(doc_ids)
    if not citations:
        gr.Warning("Ask a question first: there are no cited studies to export yet.")
        return None
    text = to_bibtex(citations) if kind == "bib" else to_ris(citations)
    # One folder per process, one file per set of studies: repeated clicks reuse it.
    name = hashlib.sha1("\n".join(doc_ids).encode()).hexdigest()[:10]
    path = export_folder() / name / f"cited-studies.{kind}"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


@lru_cache(maxsize=1)
def export_folder() -> Path:
    """One temp folder per process for exported citation files."""
    return Path(tempfile.mkdtemp(prefix="qa-cite-"))


def matching_studies(service: Service, filters: Filters) -> int:
    """How many summaries in the index pass the filters."""
    index = service.searcher.index
    if not filters.active:
        return len(index.documents)
    return sum(
        1
        for doc_id in index.documents
        if (chunks := index.chunks_of(doc_id)) and filters.allows(chunks[0].citation)
    )


def newest_first(answer: Answer) -> Answer:
    """The answer with its studies in order of publication, newest first, renumbered."""
    order = sorted(answer.studies, key=lambda s: s.citation.published or s.citation.year, reverse=True)
    studies = tuple(dataclasses.replace(s, rank=n) for n, s in enumerate(order, start=1))
    return dataclasses.replace(answer, studies=studies)


def summary_parts(service: Service, doc_id: str) -> list[tuple[str, str]]:
    """The sections of an indexed summary, in order (the parts of a long section joined)."""
    parts: list[tuple[str, str]] = []
    for chunk in service.searcher.index.chunks_of(doc_id):
        if parts and parts[-1][0] == chunk.section:
            parts[-1] = (chunk.section, parts[-1][1] + "\n\n" + chunk.text)
        else:
            parts.append((chunk.section, chunk.text))
    return parts


def study_designs(service: Service, answer: Answer) -> dict[str, list[str]]:
    """The study types each summary names in its method sections ("Randomised", …), by study."""
    out = {}
    for study in answer.studies:
        parts = summary_parts(service, study.doc_id)
        methods = [t for h, t in parts if h in METHOD_SECTIONS] or [t for _, t in parts]
        out[study.doc_id] = study_types([study.citation.title, *methods])
    return out


def build_text(service: Service) -> str:
    """The first build's progress in words ("" once there is an index)."""
    if service.ready:
        return ""
    return service.building.text() if service.building else "There is no index to search yet."


def reader_about(service: Service) -> str:
    """Markdown for readers: what the collection is, its size and dates, and what it is not."""
    if not service.ready:
        return f"{build_text(service)} {DISCLAIMER}"
    index = service.searcher.index
    dates = sorted(
        c.published for d in index.documents if (ch := index.chunks_of(d)) and (c := ch[0].citation).published
    )
    span = f", published {dates[0][:4]} to {dates[-1][:4]}" if dates else ""
    return (
        f"**{len(index.documents)} plain-language summaries** of ME/CFS and Long COVID research{span}. "
        "Each summarises one source (a paper, preprint, trial registration, video or news item) and "
        "links to it; the answers quote the summaries word for word and generate nothing. "
        "The summaries are in English, so questions in English work best. "
        "A summary can simplify or miss details: check the linked source. "
        f"{DISCLAIMER}"
    )


def year_choices(service: Service) -> list[str]:
    """ "Any" and every year a summary of the index was published in, newest first."""
    if not service.ready:
        return [ANY]
    index = service.searcher.index
    years = {
        c.published[:4]
        for d in index.documents
        if (ch := index.chunks_of(d)) and (c := ch[0].citation).published
    }
    return [ANY, *sorted(years, reverse=True)]


def filter_note_text(service: Service, filters: Filters) -> str:
    """The filters in words with how many summaries match them (the same count the answer gives)."""
    if not service.ready:
        return ""
    count = matching_studies(service, filters)
    if not filters.active:
        return f"No filters: all {count} summaries are searched."
    what = "summary matches" if count == 1 else "summaries match"
    return f"Filters: {filters_text(filters)}. {count} {what}."


def source_view(service: Service, doc_id: str) -> str:
    """HTML of a whole summary for the source view, or a line saying it has left the index."""
    found = service.summary(doc_id)
    if found is None:
        return "<p>That study is no longer in the index.</p>"
    return source_html(*found)


def index_about(service: Service) -> str:
    """Markdown for the operator's "About this index" panel, every value escaped."""
    if not service.ready:
        return text_html(build_text(service))
    status = service.status()
    lines = [
        f"- **Summaries:** {status.summaries} ({status.passages} passages)",
        f"- **Folder:** {text_html(status.folder)}",
        f"- **Built:** {status.built}; **updated:** {status.updated}",
        f"- **Model:** {text_html(status.model)}",
    ]
    if status.last_rebuild:
        lines.append(f"- **Last rebuild:** {status.last_rebuild}")
    lines += [f"- **Skipped:** {text_html(problem)}" for problem in status.problems]
    return "\n".join(lines)
