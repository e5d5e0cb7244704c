"""The search's stages after understanding a question: retrieve, fuse, group by study, rerank, choose passages.

Each is a plain function (or a small `Retriever` class) over the types in `qa.search.types`, so
each can be tested alone; `qa.search.pipeline.Searcher` runs them in order."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qa.corpus.chunking import Chunk
from qa.index.store import Index
from qa.models.embedding import Embedder
from qa.models.rerank import Reranker
from qa.search.types import Filters, Passage, SearchSettings

RRF_K = 60  # the constant from Cormack et al. (2009); robust without tuning

# --- retrieve ---------------------------------------------------------------------------


class Retriever(Protocol):
    """One first-stage list: chunk ids with scores, best first.

    A retriever that can apply the search's filters itself says so with `filters_inside = True`
    and takes them as a third argument, `retrieve(text, n, filters)`; the others are asked for
    every passage when filters are on, and filtered after.
    """

    name: str

    def retrieve(self, text: str, n: int) -> list[tuple[int, float]]:
        """The `n` best chunk ids for `text`, with this retriever's scores."""
        ...


#: The name the multilingual first stage (qa/models/multilingual.py) is registered under.
MULTILINGUAL = "multilingual"


class DenseRetriever:
    """Nearest passages by the embedding model's vectors (inner product of unit vectors)."""

    name = "dense"

    def __init__(self, index: Index, embedder: Embedder) -> None:
        self.index, self.embedder = index, embedder

    @property
    def filters_inside(self) -> bool:
        """Whether the vector store applies filters itself (PostgreSQL: inside the SQL)."""
        return bool(getattr(self.index.vectors, "filters_inside", False))

    def retrieve(self, text: str, n: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """The `n` nearest passages (that pass `filters`, when the store applies them)."""
        n = min(n, self.index.vectors.ntotal)
        if n == 0:
            return []
        query = self.embedder.encode_query(text).reshape(1, -1)
        if filters is not None and filters.active and self.filters_inside:
            scores, ids = self.index.vectors.search(query, n, filters)
        else:
            scores, ids = self.index.vectors.search(query, n)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


class KeywordRetriever:
    """Passages by BM25 over their words (stemmed)."""

    name = "bm25"
    #: Filters are applied inside the keyword search (a mask over its rows), before the top `n`.
    filters_inside = True

    def __init__(self, index: Index) -> None:
        self.index = index
        self._mask: PassageMask | None = None

    def retrieve(self, text: str, n: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """The `n` best passages by BM25 (that pass `filters`)."""
        if filters is None or not filters.active:
            return self.index.keywords.search(text, n)
        if self._mask is None:  # once per index, on its first filtered question
            self._mask = PassageMask(self.index.chunks)
        return self.index.keywords.search(text, n, allowed=self._mask.allowed(filters))


class PassageMask:
    """`Filters.allows` over every passage at once (numpy): which passage ids pass.

    At 200k passages, filtering the keyword list in Python (a call per passage) took 0.5 s a
    question; these arrays answer in milliseconds.
    """

    def __init__(self, chunks: dict[int, Chunk]) -> None:
        self.ids = np.fromiter(chunks, dtype=np.int64, count=len(chunks))
        self.size = int(self.ids.max()) + 1 if len(self.ids) else 0
        self._citations = [chunks[i].citation for i in self.ids.tolist()]
        self._tags: dict[str, np.ndarray] = {}
        self.published = np.array([c.published or "" for c in self._citations], dtype=str)
        self.docs = np.array([chunks[i].doc_id for i in self.ids.tolist()], dtype=object)

    def _tag(self, tag: str) -> np.ndarray:
        if tag not in self._tags:
            self._tags[tag] = np.fromiter((tag in c.tags for c in self._citations), dtype=bool)
        return self._tags[tag]

    def allowed(self, filters: Filters) -> np.ndarray:
        """A boolean array by passage id: True where the passage's study passes `filters`."""
        keep = np.ones(len(self.ids), dtype=bool)
        if filters.tags:
            keep &= np.logical_or.reduce([self._tag(t) for t in filters.tags])
        if filters.date_from:
            keep &= (self.published != "") & (self.published >= filters.date_from)
        if filters.date_to:
            keep &= (self.published != "") & (self.published <= filters.date_to)
        if filters.exclude:
            keep &= ~np.isin(self.docs, list(filters.exclude))
        out = np.zeros(self.size, dtype=bool)
        out[self.ids[keep]] = True
        return out


# --- fuse -------------------------------------------------------------------------------


def fuse(ranked_lists: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of several ranked lists: (id, fused score), best first."""
    fused: dict[int, float] = {}
    for ranked in ranked_lists:
        for rank, (cid, _) in enumerate(ranked):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(fused.items(), key=lambda item: item[1], reverse=True)


# --- group by study ---------------------------------------------------------------------


@dataclass
class StudyGroup:
    key: str
    passages: list[Passage]  # fused order, best first
    files: list[str]
    score: float = 0.0
    reranked: bool = False


def study_key(chunk: Chunk, documents: dict | None = None) -> str:
    """One key per study: its DOI when it has one (two files, one study), else its content (the
    same file saved under two names is one study), else its file."""
    doi = chunk.citation.doi.lower().rstrip(".")
    if doi:
        return f"doi:{doi}"
    content = (documents or {}).get(chunk.doc_id, {}).get("hash")
    return f"hash:{content}" if content else chunk.doc_id


def group_by_study(passages: list[Passage], index: Index, text: str, whole: bool) -> list[StudyGroup]:
    """Studies in fused order; with `whole`, a third RRF list of whole summaries by BM25.

    The whole-summary list lifts studies about the topic above ones that mention it in one
    passage (measured on the dev questions and NFCorpus dev, see bench/).
    """
    studies: dict[str, StudyGroup] = {}
    documents = index.documents if index is not None else None
    for passage in passages:
        key = study_key(passage.chunk, documents)
        study = studies.setdefault(key, StudyGroup(key, [], [], passage.score))
        study.passages.append(passage)
        if passage.chunk.doc_id not in study.files:
            study.files.append(passage.chunk.doc_id)
    if whole:
        by_file = {name: s for s in studies.values() for name in s.files}
        seen: set[str] = set()
        for doc_id, _ in index.study_keywords.search(text, 100):
            study = by_file.get(doc_id)
            if study is not None and study.key not in seen:
                study.score += 1.0 / (RRF_K + len(seen) + 1)
                seen.add(study.key)
    return sorted(studies.values(), key=lambda s: s.score, reverse=True)


# --- rerank -----------------------------------------------------------------------------


def rerank(
    text: str, studies: list[StudyGroup], reranker: Reranker, settings: SearchSettings
) -> list[StudyGroup]:
    """Score the best passages of the leading studies with the reranker; reorder those studies.

    A study's score becomes its best passage's reranker score: the evidence that answers,
    not how often the words occur. Studies past `rerank_studies` keep their fused order after.
    """
    head, tail = studies[: settings.rerank_studies], studies[settings.rerank_studies :]
    pairs = [(s, p) for s in head for p in _candidates(s, settings.rerank_passages)]
    if not pairs:
        return studies
    scores = reranker.score(text, [p.chunk.embed_text for _, p in pairs])
    rescored: dict[int, float] = {}
    for (_, passage), value in zip(pairs, scores):
        rescored[id(passage)] = float(value)
    for fused_rank, study in enumerate(head):
        study.passages = [
            Passage(p.chunk, p.score, p.dense, p.keyword, rescored.get(id(p))) for p in study.passages
        ]
        best = max(p.rerank for p in study.passages if p.rerank is not None)
        study.score = best - settings.first_stage_weight * math.log2(1 + fused_rank)
        study.reranked = True
    head.sort(key=lambda s: s.score, reverse=True)
    # Studies the reranker did not read stay below every one it did, in their fused order.
    floor = min(s.score for s in head)
    for n, study in enumerate(tail, start=1):
        study.score = floor - 1.0 - n / 1000
    return head + tail


def _candidates(study: StudyGroup, n: int) -> list[Passage]:
    """A study's best `n` fused passages, one of them from its findings when it has one there.

    The sections that set out the question repeat its words and lead the fused list; the
    reranker can only prefer the passage that answers if it reads one.
    """
    chosen = study.passages[:n]
    if n > 1 and all(is_background(p.chunk.section) for p in chosen):
        findings = next((p for p in study.passages[n:] if not is_background(p.chunk.section)), None)
        if findings is not None:
            chosen = [*chosen[: n - 1], findings]
    return chosen


# --- choose passages --------------------------------------------------------------------

# Sections that set out what a study asked and how, rather than what it found. Every summary
# has them under these headings; shown first they restate the question instead of answering.
_BACKGROUND = re.compile(
    r"\b(?:what|why|how) (?:was|were|is|are)(?: (?:it|this|they))? researched\b|\bpurpose\b|\bdesign\b"
    r"|\beligibility\b|\bbackground\b|\bmethods?\b",
    re.I,
)
#: How many reranker points a findings passage may trail a background one by and still lead.
FINDINGS_MARGIN = 2.0


def is_background(section: str) -> bool:
    """Whether a section describes the question or method rather than the findings."""
    return bool(_BACKGROUND.search(section))


def choose_passages(study: StudyGroup, per_study: int) -> list[Passage]:
    """The passage that answers first (findings before background when close), then one more.

    A second passage is shown only when it adds: another section of the same file, scoring
    close to the first.
    """
    found = study.passages
    if study.reranked:
        scored = [p for p in found if p.rerank is not None]

        def weight(p: Passage) -> float:
            return p.rerank - (FINDINGS_MARGIN if is_background(p.chunk.section) else 0.0)

        best = max(scored, key=weight)
        others = sorted((p for p in scored if p is not best), key=weight, reverse=True)
        close = [p for p in others if weight(p) >= weight(best) - FINDINGS_MARGIN]
    else:
        best, others = found[0], found[1:]
        close = [p for p in others if p.score >= 0.85 * best.score]
    shown = [best]
    for other in close:
        if len(shown) >= per_study:
            break
        if other.chunk.doc_id == best.chunk.doc_id and other.chunk.section != best.chunk.section:
            shown.append(other)
    return shown
