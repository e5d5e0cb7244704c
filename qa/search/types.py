"""The small frozen types a search passes between its stages and returns: settings, filters, passages, studies, the answer."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from qa.config import CATEGORY_TAGS, DEFAULT_RERANK_BUSY, DEFAULT_RERANKER
from qa.corpus.chunking import Chunk
from qa.corpus.documents import Citation
from qa.search.quotes import Quote


@dataclass(frozen=True)
class SearchSettings:
    """Everything that changes what a search returns, with the measured defaults (bench/)."""

    mode: str = "hybrid"
    #: "cross-encoder" (bundled) or "none".
    rerank: str = DEFAULT_RERANKER
    #: Studies, in fused order, whose best passages the reranker reads.
    rerank_studies: int = 10
    #: Passages per such study sent to the reranker (its best fused ones).
    rerank_passages: int = 3
    #: Word pieces of a passage the reranker reads (the question is never cut).
    rerank_tokens: int = 192
    #: How much a study's first-stage rank still counts after reranking: its score is the best
    #: reranker logit minus this times log2(1 + fused rank).
    first_stage_weight: float = 0.0
    #: Rerank only while fewer than this many other questions are being searched in this
    #: process (0: always). The cross-encoder costs ~0.5 s of CPU per question; on 2 cores,
    #: 32 readers at once would each wait half a minute. Past the limit, the first-stage order
    #: stands for that answer, and the answer says so (`Answer.reranked`).
    rerank_busy: int = DEFAULT_RERANK_BUSY
    #: Passages taken from each retriever before fusing.
    candidates: int = 100
    #: Spell out acronyms and correct typos against the corpus before searching.
    understand: bool = True
    #: Questions in German, Spanish, French, Dutch or Italian searched with multilingual-e5
    #: (qa/models/multilingual.py); registered by the service layer when it opens an index.
    multilingual: bool = True
    #: Studies whose shown sentences the reranker reads for the digest ("In short") and the
    #: cards' marks (qa/search/digest.py); 0: the bi-encoder's marks and digest instead.
    digest_studies: int = 5
    # "Not covered" (qa/search/coverage.py); the reranker's own thresholds come with it.
    #: Without a reranker: the dense similarity below which nothing is close enough.
    min_dense: float = 0.30
    #: The same for a question in another language, on multilingual-e5's cosine, whose scale is
    #: narrow: on tests/data/questions-multilingual.jsonl every answerable question's best passage
    #: scored 0.841-0.888, while off-topic questions (plantar fasciitis, a urinary infection)
    #: scored 0.807-0.837.
    min_multilingual: float = 0.825
    #: ... only for questions of this many words or more: one- and two-word queries score lower
    #: (0.82-0.85) whether or not they are answered.
    min_multilingual_words: int = 4
    #: A word is rare when at most this share of passages use it (and at least 3 passages' worth).
    rare_share: float = 0.002
    #: Words this frequent in general English (symspellpy's counts) are everyday words ("tired",
    #: "harder"): a paraphrase uses them, so their absence says little.
    everyday_count: int = 5_000_000

    def describe(self) -> dict:
        """The settings as a plain dict, for answers, eval reports and the bench."""
        return asdict(self)


@dataclass(frozen=True)
class Filters:
    """Limits on which studies may answer: category tags and a published-date range."""

    tags: tuple[str, ...] = ()
    date_from: str = ""
    date_to: str = ""
    #: Summaries (doc ids) that may not answer: `bench/verdict.py` leaves a question's answers
    #: out to see what the search says when nothing answers.
    exclude: tuple[str, ...] = ()

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
        return bool(self.tags or self.date_from or self.date_to or self.exclude)


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
    """One retrieved chunk with its fused score, the per-retriever scores and the reranker's."""

    chunk: Chunk
    score: float
    dense: float | None = None
    keyword: float | None = None
    rerank: float | None = None


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
    #: The question as searched: acronyms spelled out, typos corrected ("" = as typed).
    searched: str = ""
    corrections: tuple[tuple[str, str], ...] = ()
    expansions: tuple[tuple[str, str], ...] = ()
    settings: dict = field(default_factory=dict)
    #: The question's language (ISO code); the summaries are English.
    language: str = "en"
    #: Whether the reranker ordered the studies; False with `rerank="none"`, for another
    #: language, or when the server was too busy (`SearchSettings.rerank_busy`).
    reranked: bool = False
    #: Why the reranker, though on, did not run ("" when it ran or is off).
    rerank_skipped: str = ""
    #: The part of a long question that was searched, when it was cut (qa/search/question.py).
    cut: str = ""
    #: Whether the reranker read the shown sentences (qa/search/digest.py); then `digest` is
    #: what it judged to answer (possibly nothing) and `marks` the sentences it marks.
    quoted: bool = False
    #: The digest ("In short"): sentences judged to answer, at most one a study, best first.
    digest: tuple[Quote, ...] = ()
    #: Per (study rank, shown passage): each scored sentence's index and whether it is marked.
    marks: dict = field(default_factory=dict)
    #: The fitted verdict's probability that a summary answers (None when no verdict judged:
    #: no reranker, or another language); `evidence` holds the features it read.
    coverage: float | None = None
    evidence: dict = field(default_factory=dict)
    #: The question is in another language and the multilingual stage is still being prepared.
    preparing: bool = False
