"""Question → ranked studies with their best passages: dense + BM25, fused, grouped, filtered."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from qa.chunking import Chunk
from qa.config import CATEGORY_TAGS
from qa.documents import Citation
from qa.embedding import Embedder
from qa.index import Index
from qa.keywords import tokenize

MODES = ("hybrid", "dense", "bm25")
RRF_K = 60  # the constant from Cormack et al. (2009); robust without tuning
CANDIDATES = 100  # passages taken from each retriever before fusing


@dataclass(frozen=True)
class Filters:
    """Limits on which studies may answer: category tags and a published-date range."""

    tags: tuple[str, ...] = ()
    date_from: str = ""
    date_to: str = ""

    def allows(self, citation: Citation) -> bool:
        """Whether a study passes the filters (any of the tags; dates inclusive)."""
        if self.tags and not set(self.tags) & set(citation.tags):
            return False
        published = citation.published
        if self.date_from and (not published or published < self.date_from):
            return False
        return not (self.date_to and (not published or published > self.date_to))

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return bool(self.tags or self.date_from or self.date_to)


_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def parse_filters(tags: list[str] | None, date_from: str = "", date_to: str = "") -> Filters:
    """Filters from user input; a bad date raises ValueError with a plain message.

    Dates may be a year, a month or a day: "2024" as an end date means the end of 2024.
    """
    dates = []
    for label, value in (("From", date_from), ("To", date_to)):
        value = (value or "").strip()
        if value and not _DATE.match(value):
            raise ValueError(f"{label} date must look like 2024, 2024-05 or 2024-05-31 (got {value!r})")
        dates.append(value)
    start, end = dates
    if end and len(end) < 10:
        end = end + "-99"  # sorts after every day of that year or month
    unknown = [t for t in (tags or []) if t not in CATEGORY_TAGS]
    if unknown:
        raise ValueError(f"unknown tag(s) {unknown}; choose from {', '.join(CATEGORY_TAGS)}")
    return Filters(tuple(tags or ()), start, end)


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk with its fused score and the per-retriever scores."""

    chunk: Chunk
    score: float
    dense: float | None = None
    keyword: float | None = None


@dataclass(frozen=True)
class StudyHit:
    """A study in the answer, with the passage(s) that answer best."""

    rank: int
    doc_id: str
    citation: Citation
    score: float
    passages: tuple[Passage, ...]
    also: tuple[str, ...] = ()  # other files of the same study (same DOI)


@dataclass(frozen=True)
class Answer:
    """What a search returns: ranked studies, and whether they seem to answer the question."""

    question: str
    studies: tuple[StudyHit, ...]
    covered: bool
    reason: str = ""
    filters: Filters = field(default_factory=Filters)
    mode: str = "hybrid"


def _study_key(chunk: Chunk) -> str:
    doi = chunk.citation.doi.lower().rstrip(".")
    return f"doi:{doi}" if doi else chunk.doc_id


class Searcher:
    """Answers questions from one loaded index with one embedding model."""

    def __init__(self, index: Index, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder

    def _dense(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        n = min(n, self.index.vectors.ntotal)
        if n == 0:
            return []
        scores, ids = self.index.vectors.search(vector.reshape(1, -1), n)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def passages(self, question: str, filters: Filters = Filters(), mode: str = "hybrid") -> list[Passage]:
        """All candidate passages for a question, best first, after filters."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        # With filters on, look further down each list so enough allowed passages remain.
        n = self.index.vectors.ntotal if filters.active else CANDIDATES
        dense: list[tuple[int, float]] = []
        keyword: list[tuple[int, float]] = []
        if mode in ("hybrid", "dense"):
            dense = self._dense(self.embedder.encode_query(question), n)
        if mode in ("hybrid", "bm25"):
            keyword = self.index.keywords.search(question, n)
        chunks = self.index.chunks
        dense = [(i, s) for i, s in dense if filters.allows(chunks[i].citation)]
        keyword = [(i, s) for i, s in keyword if filters.allows(chunks[i].citation)]
        fused: dict[int, float] = {}
        for ranked in (dense, keyword):
            for rank, (cid, _) in enumerate(ranked):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
        dense_score, keyword_score = dict(dense), dict(keyword)
        order = sorted(fused, key=fused.__getitem__, reverse=True)
        return [Passage(chunks[c], fused[c], dense_score.get(c), keyword_score.get(c)) for c in order]

    def search(
        self,
        question: str,
        k: int = 5,
        filters: Filters = Filters(),
        mode: str = "hybrid",
        per_study: int = 2,
    ) -> Answer:
        """Rank studies for a question; each study carries its best passage(s)."""
        question, k = question.strip(), max(1, k)
        if not question:
            return Answer(question, (), False, "empty question", filters, mode)
        grouped: dict[str, list[Passage]] = {}
        files: dict[str, list[str]] = {}
        for passage in self.passages(question, filters, mode):
            key = _study_key(passage.chunk)
            grouped.setdefault(key, []).append(passage)
            names = files.setdefault(key, [])
            if passage.chunk.doc_id not in names:
                names.append(passage.chunk.doc_id)
        score = {key: found[0].score for key, found in grouped.items()}
        if mode == "hybrid":
            # A third ranked list, of whole summaries by BM25, fused the same way (RRF): it
            # lifts studies about the topic above ones that mention it in one passage.
            # Measured on the dev questions and NFCorpus dev (see bench/): nDCG@10 up.
            doc_keys = {}
            for key, names in files.items():
                for name in names:
                    doc_keys.setdefault(name, key)
            seen: set[str] = set()
            for doc_id, _ in self.index.study_keywords.search(question, CANDIDATES):
                key = doc_keys.get(doc_id)
                if key is not None and key not in seen:
                    score[key] += 1.0 / (RRF_K + len(seen) + 1)
                    seen.add(key)
        order = sorted(score, key=score.__getitem__, reverse=True)
        studies = []
        for rank, key in enumerate(order[:k], start=1):
            found = grouped[key]
            best = found[0]
            shown = [best]
            for other in found[1:]:
                # A second passage only when it adds: another section, from the same file,
                # scoring close to the best one.
                if len(shown) >= per_study:
                    break
                same_doc = other.chunk.doc_id == best.chunk.doc_id
                adds = same_doc and other.chunk.section != best.chunk.section
                if adds and other.score >= 0.85 * best.score:
                    shown.append(other)
            studies.append(
                StudyHit(
                    rank=rank,
                    doc_id=best.chunk.doc_id,
                    citation=best.chunk.citation,
                    score=score[key],
                    passages=tuple(shown),
                    also=tuple(n for n in files[key] if n != best.chunk.doc_id),
                )
            )
        covered, reason = self.judge_coverage(question, studies, mode)
        return Answer(question, tuple(studies), covered, reason, filters, mode)

    def judge_coverage(self, question: str, studies: list[StudyHit], mode: str) -> tuple[bool, str]:
        """Decide from the evidence whether any summary answers the question."""
        if not studies:
            return False, "no passage matched the question"
        top = studies[0].passages[0]
        dense = max((p.dense or 0.0) for s in studies[:3] for p in s.passages)
        missing = self.unknown_terms(question)
        # A thing the question is about (a drug, a condition: typed in lower case or opening
        # the question) that no summary names means no summary answers, unless the meaning
        # matches very closely. A capitalised name (a city, a university) is weaker evidence:
        # summaries often leave out where a study was run.
        things = [w for w in missing if w.islower() or question.lstrip().startswith(w) or w.isupper()]
        if things and dense < 0.70:
            return False, "not in any summary: " + ", ".join(things)
        if missing and (top.keyword is None or dense < 0.55):
            return False, "not in any summary: " + ", ".join(missing)
        if mode != "bm25" and dense < 0.30:
            return False, f"nothing close enough (best similarity {dense:.2f})"
        return True, ""

    def unknown_terms(self, question: str) -> list[str]:
        """Distinctive words of the question that occur in no summary at all.

        A word counts as distinctive when the model's general vocabulary does not know it
        as one piece (drug names, gene names) or it is an acronym. Common words missing
        from a small corpus, and questions largely in another language, say nothing.
        """
        words = re.findall(r"[^\W\d_][\w-]{2,}", question)
        known, unknown = 0, []
        for word in words:
            tokens = tokenize(word)
            if not tokens:
                continue
            keywords = self.index.keywords
            if any(keywords.doc_freq(t) > 0 for t in tokens) or keywords.knows_stem_of(word):
                known += 1
            elif (word.isupper() and len(word) >= 3) or not self.embedder.is_common_word(word):
                unknown.append(word)
        # Many unknown words mean another language or wording, not a missing topic.
        return unknown if 3 * len(unknown) <= known + len(unknown) else []
