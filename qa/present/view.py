"""One view of an answer, which every format renders: HTML, Markdown to copy, terminal text, JSON.

`answer_view` makes it from a search's `Answer` and its highlights (in the server or `qa ask
--local`); `view_from_dict` makes the same view from the `/ask` JSON (`qa ask` answered by a
running server), so each format is written once. Only the standard library and the citation
type are imported here: the remote client must stay light.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from qa.corpus.citations import Citation
from qa.corpus.kinds import source_kind
from qa.present.translations import notice, ui_text
from qa.search.quotes import Quote

if TYPE_CHECKING:  # annotations only: the remote client never imports the search stack
    from qa.search.types import Answer, Filters, StudyHit

#: Below this similarity to the question no sentence is marked (it would mislead), and a
#: one-sentence passage (never marked: that would mark all of it) is not quoted in the digest.
MIN_SIMILARITY = 0.25


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage, and whether it answers the question best."""

    text: str
    marked: bool
    similarity: float


@dataclass(frozen=True)
class PassageView:
    """One shown passage: its section, its text, its sentences (marked or not) and its scores."""

    section: str
    text: str
    sentences: tuple[Sentence, ...] = ()
    score: float = 0.0
    dense: float | None = None
    keyword: float | None = None
    rerank: float | None = None

    @property
    def marked(self) -> list[str]:
        """The sentences marked as answering best."""
        return [s.text for s in self.sentences if s.marked]


@dataclass(frozen=True)
class StudyView:
    """One study of the answer: rank, citation, what its link is, and the passages shown."""

    rank: int
    doc_id: str
    citation: Citation
    passages: tuple[PassageView, ...]
    score: float = 0.0
    also: tuple[str, ...] = ()
    #: The study designs its summary names ("Randomised" …), when the caller looked them up.
    types: tuple[str, ...] = ()
    #: The whole summary, (heading, text) per section, when the caller read it.
    full: tuple[tuple[str, str], ...] = ()

    @property
    def source_kind(self) -> str:
        """What the study's link leads to: "Paper (DOI)", "Video" …"""
        return source_kind(self.citation)


@dataclass(frozen=True)
class AnswerView:
    """What every format shows of an answer."""

    question: str
    studies: tuple[StudyView, ...]
    covered: bool
    reason: str = ""
    digest: tuple[Quote, ...] = ()
    #: The fitted verdict's probability that a summary answers (None: no verdict judged).
    coverage: float | None = None
    #: The question's language is still being prepared for (the reason says so in it).
    preparing: bool = False
    searched: str = ""
    corrections: tuple[tuple[str, str], ...] = ()
    expansions: tuple[tuple[str, str], ...] = ()
    cut: str = ""
    language: str = "en"
    mode: str = "hybrid"
    reranked: bool = False
    rerank_skipped: str = ""
    settings: dict = field(default_factory=dict)
    #: The filters as given: tags, date_from, date_to ("YYYY-99" ends a year).
    filters: dict = field(default_factory=dict)

    def text(self, key: str) -> str:
        """A fixed text of the answer ("in_short", "studies", "disclaimer" …) in the question's language."""
        return ui_text(self.language, key)

    @property
    def notice(self) -> str:
        """ "The summaries are in English", in the question's language; empty for English."""
        return notice(self.language)


def digest(studies: tuple[StudyView, ...], top: int = 3, per_study: int = 2) -> tuple[Quote, ...]:
    """The marked sentences of the top studies' open passages, best first; quoted, never made up."""
    out = []
    for study in studies[:top]:
        # The first passage only: it is the one shown open on the card, so every quote can be
        # found there (the others stay folded until asked for).
        if not study.passages:
            continue
        first = study.passages[0]
        # A one-sentence passage is never marked (that would mark all of it), but its sentence
        # may still be the study's best answer.
        one = len(first.sentences) == 1
        found = [s for s in first.sentences if s.marked or (one and s.similarity >= MIN_SIMILARITY)]
        for sentence in sorted(found, key=lambda s: -s.similarity)[:per_study]:
            out.append(Quote(study.rank, study.doc_id, first.section, sentence.text))
    return tuple(out)


def study_view(
    study: StudyHit,
    marks: list[list[Sentence]] | None = None,
    types: list[str] | None = None,
    full: list[tuple[str, str]] | None = None,
) -> StudyView:
    """The view of one study of an answer; `marks`: the sentences of each shown passage."""
    marks = marks or []
    passages = tuple(
        PassageView(
            p.chunk.section,
            p.chunk.text,
            tuple(marks[n]) if n < len(marks) else (),
            p.score,
            p.dense,
            p.keyword,
            p.rerank,
        )
        for n, p in enumerate(study.passages)
    )
    return StudyView(
        study.rank,
        study.doc_id,
        study.citation,
        passages,
        study.score,
        study.also,
        tuple(types or ()),
        tuple(full or ()),
    )


def answer_view(
    answer: Answer,
    highlights: dict[int, list[list[Sentence]]] | None = None,
    types: dict[str, list[str]] | None = None,
    full: dict[str, list[tuple[str, str]]] | None = None,
) -> AnswerView:
    """The view of a search's answer; `highlights` per study rank, `types` and `full` per doc id."""
    highlights, types, full = highlights or {}, types or {}, full or {}
    studies = tuple(
        study_view(s, highlights.get(s.rank), types.get(s.doc_id), full.get(s.doc_id)) for s in answer.studies
    )
    return AnswerView(
        question=answer.question,
        studies=studies,
        covered=answer.covered,
        reason=ui_text(answer.language, "preparing") if answer.preparing else answer.reason,
        coverage=answer.coverage,
        preparing=answer.preparing,
        digest=answer.digest if answer.quoted else (digest(studies) if answer.covered else ()),
        searched=answer.searched,
        corrections=answer.corrections,
        expansions=answer.expansions,
        cut=answer.cut,
        language=answer.language,
        mode=answer.mode,
        reranked=answer.reranked,
        rerank_skipped=answer.rerank_skipped,
        settings=answer.settings,
        filters=_filters_dict(answer.filters),
    )


def _filters_dict(filters: Filters) -> dict:
    return {"tags": list(filters.tags), "date_from": filters.date_from, "date_to": filters.date_to}


def _round(value: float | None, places: int) -> float | None:
    return None if value is None else round(value, places)


def view_to_dict(view: AnswerView) -> dict:
    """The JSON of `/ask` and `qa ask --json`: studies, passages, highlights, scores, citations, digest."""
    return {
        "question": view.question,
        "searched": view.searched or view.question,
        "corrections": [list(pair) for pair in view.corrections],
        "expansions": [list(pair) for pair in view.expansions],
        "covered": view.covered,
        "coverage": _round(view.coverage, 3),
        "preparing": view.preparing,
        "reason": view.reason,
        "mode": view.mode,
        "settings": view.settings,
        "reranked": view.reranked,
        "rerank_skipped": view.rerank_skipped,
        "cut": view.cut,
        "language": view.language,
        "notice": view.notice,
        "filters": dict(view.filters),
        "digest": [q.as_dict() for q in view.digest],
        "studies": [
            {
                "rank": s.rank,
                "doc_id": s.doc_id,
                "score": round(s.score, 6),
                "citation": {**asdict(s.citation), "url": s.citation.url, "text": s.citation.as_text()},
                "also": list(s.also),
                "passages": [
                    {
                        "section": p.section,
                        "text": p.text,
                        "score": round(p.score, 6),
                        "dense_score": _round(p.dense, 4),
                        "bm25_score": _round(p.keyword, 4),
                        "rerank_score": _round(p.rerank, 4),
                        "highlights": p.marked,
                    }
                    for p in s.passages
                ],
            }
            for s in view.studies
        ],
    }


_CITATION_FIELDS = tuple(Citation.__dataclass_fields__)


def _citation(data: dict[str, Any]) -> Citation:
    fields = {k: data[k] for k in _CITATION_FIELDS if k in data}
    fields["tags"] = tuple(fields.get("tags", ()))
    return Citation(**fields)


def view_from_dict(data: dict[str, Any]) -> AnswerView:
    """The view of an `/ask` JSON answer (the inverse of `view_to_dict`, as far as it carries)."""
    studies = tuple(
        StudyView(
            rank=s["rank"],
            doc_id=s.get("doc_id", ""),
            citation=_citation(s.get("citation", {})),
            passages=tuple(
                PassageView(
                    p.get("section", ""),
                    p.get("text", ""),
                    tuple(Sentence(t, True, 1.0) for t in p.get("highlights", [])),
                    p.get("score", 0.0),
                    p.get("dense_score"),
                    p.get("bm25_score"),
                    p.get("rerank_score"),
                )
                for p in s.get("passages", [])
            ),
            score=s.get("score", 0.0),
            also=tuple(s.get("also", ())),
        )
        for s in data.get("studies", [])
    )
    return AnswerView(
        question=data.get("question", ""),
        studies=studies,
        covered=data.get("covered", False),
        coverage=data.get("coverage"),
        preparing=data.get("preparing", False),
        reason=data.get("reason", ""),
        digest=tuple(Quote(**q) for q in data.get("digest", [])),
        searched=data.get("searched", ""),
        corrections=tuple(tuple(p) for p in data.get("corrections", [])),
        expansions=tuple(tuple(p) for p in data.get("expansions", [])),
        cut=data.get("cut", ""),
        language=data.get("language", "en"),
        mode=data.get("mode", "hybrid"),
        reranked=data.get("reranked", False),
        rerank_skipped=data.get("rerank_skipped", ""),
        settings=data.get("settings", {}),
        filters=data.get("filters", {}),
    )
