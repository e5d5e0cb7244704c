"""Question → ranked studies with the passages that answer them, as a sequence of named stages.

    understand → retrieve (dense, BM25) → fuse → group by study → rerank → choose passages
    → judge coverage

Each stage is a small function below. The parts that get swapped sit behind small interfaces:
a `Retriever` (dense vectors, BM25, or another one such as a multilingual model), the
`Embedder`, and the `Reranker` (`qa/models/rerank.py`). `SearchSettings` holds everything that
changes results; `SearchSettings.describe()` is recorded with each answer.
"""

from __future__ import annotations

import math
import re
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Protocol

from qa.config import CATEGORY_TAGS
from qa.corpus.chunking import Chunk
from qa.corpus.documents import Citation
from qa.index.keywords import tokenize
from qa.index.store import Index
from qa.models.embedding import Embedder
from qa.models.multilingual import detect_language
from qa.models.rerank import DEFAULT_RERANKER, Reranker, get_reranker
from qa.search.question import clean_text, fit_question
from qa.search.vocabulary import Understood, Vocabulary, english_counts

MODES = ("hybrid", "dense", "bm25")
NO_WORDS = "The question has no words to search for: ask in words, for example “Does pacing help?”."
RRF_K = 60  # the constant from Cormack et al. (2009); robust without tuning


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
    rerank_busy: int = 2
    #: Passages taken from each retriever before fusing.
    candidates: int = 100
    #: Spell out acronyms and correct typos against the corpus before searching.
    understand: bool = True
    #: Questions in German, Spanish, French, Dutch or Italian searched with multilingual-e5
    #: (qa/models/multilingual.py); registered by the service layer when it opens an index.
    multilingual: bool = True

    def describe(self) -> dict:
        """The settings as a plain dict, for answers, eval reports and the bench."""
        return asdict(self)


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


# --- retrieve ---------------------------------------------------------------------------


class Retriever(Protocol):
    """One first-stage list: chunk ids with scores, best first."""

    name: str

    def retrieve(self, text: str, n: int) -> list[tuple[int, float]]:
        """The `n` best chunk ids for `text`, with this retriever's scores."""
        ...


class DenseRetriever:
    """Nearest passages by the embedding model's vectors (inner product of unit vectors)."""

    name = "dense"

    def __init__(self, index: Index, embedder: Embedder) -> None:
        self.index, self.embedder = index, embedder

    def retrieve(self, text: str, n: int) -> list[tuple[int, float]]:
        """The `n` nearest passages."""
        n = min(n, self.index.vectors.ntotal)
        if n == 0:
            return []
        scores, ids = self.index.vectors.search(self.embedder.encode_query(text).reshape(1, -1), n)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


class KeywordRetriever:
    """Passages by BM25 over their words (stemmed)."""

    name = "bm25"

    def __init__(self, index: Index) -> None:
        self.index = index

    def retrieve(self, text: str, n: int) -> list[tuple[int, float]]:
        """The `n` best passages by BM25."""
        return self.index.keywords.search(text, n)


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
class _Study:
    key: str
    passages: list[Passage]  # fused order, best first
    files: list[str]
    score: float = 0.0
    reranked: bool = False


def study_key(chunk: Chunk) -> str:
    """One key per study: its DOI when it has one (two files, one study), else its file."""
    doi = chunk.citation.doi.lower().rstrip(".")
    return f"doi:{doi}" if doi else chunk.doc_id


def group_by_study(passages: list[Passage], index: Index, text: str, whole: bool) -> list[_Study]:
    """Studies in fused order; with `whole`, a third RRF list of whole summaries by BM25.

    The whole-summary list lifts studies about the topic above ones that mention it in one
    passage (measured on the dev questions and NFCorpus dev, see bench/).
    """
    studies: dict[str, _Study] = {}
    for passage in passages:
        key = study_key(passage.chunk)
        study = studies.setdefault(key, _Study(key, [], [], passage.score))
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


def rerank(text: str, studies: list[_Study], reranker: Reranker, settings: SearchSettings) -> list[_Study]:
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


def _candidates(study: _Study, n: int) -> list[Passage]:
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


def choose_passages(study: _Study, per_study: int) -> list[Passage]:
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


# --- judge coverage ---------------------------------------------------------------------

#: Below this reranker score (a logit) no passage is taken to answer whatever its words: the
#: cross-encoder gives it odds of about 1 in 3,000 (paraphrased questions that do have an answer
#: were seen as low as -6.8, so the floor sits below them).
MIN_RERANK = -8.0
#: Without a reranker: the dense similarity below which nothing is close enough.
MIN_DENSE = 0.30
#: The same for a question in another language, on multilingual-e5's cosine, whose scale is
#: narrow: on tests/data/questions-multilingual.jsonl every answerable question's best passage
#: scored 0.841-0.888, while off-topic questions (plantar fasciitis, a urinary infection) scored
#: 0.807-0.837. Only for questions of MIN_WORDS words or more: one- and two-word queries score
#: lower (0.82-0.85) whether or not they are answered.
MIN_MULTILINGUAL = 0.825
MIN_WORDS = 4


def distinctive_missing(question: str, index: Index, embedder: Embedder, vocabulary: Vocabulary) -> list[str]:
    """Words of the question that name something (a drug, a gene) no summary mentions.

    A word counts when the corpus does not use it (nor its stem, nor as an acronym) and the
    model's general vocabulary does not hold it as one piece, or it is an acronym. Common words
    missing from a small corpus, and questions largely in another language, say nothing.
    """
    words = re.findall(r"[^\W\d_][\w-]{2,}", question)
    known, unknown = 0, []
    for word in words:
        tokens = tokenize(word)
        if not tokens:
            continue
        keywords = index.keywords
        if (
            vocabulary.knows(word)
            or any(keywords.doc_freq(t) > 0 for t in tokens)
            or keywords.knows_stem_of(word)
        ):
            known += 1
        elif (word.isupper() and len(word) >= 3) or not embedder.is_common_word(word):
            unknown.append(word)
    # Many unknown words mean another language or wording, not a missing topic.
    return unknown if 3 * len(unknown) <= known + len(unknown) else []


#: From this score on (odds of about 400 to 1) a passage is taken to answer even when the question
#: names something no summary mentions.
CERTAIN_RERANK = 6.0
#: Below this score the reranker leans towards "does not answer" (a logit of 0 is even odds);
#: a rare word of the question missing from the best evidence then decides.
UNSURE_RERANK = 0.0
#: A word is rare when at most this share of passages use it (and at least 3 passages' worth).
RARE_SHARE = 0.002
#: Words this frequent in general English (symspellpy's counts) are everyday words ("tired",
#: "harder"): a paraphrase uses them, so their absence says little.
EVERYDAY = 5_000_000


def absent_rare_words(question: str, studies: list[StudyHit], index: Index) -> list[str]:
    """Rare words of the question that the best studies' shown passages and titles never use.

    A question about "urinary tract infection" whose nearest passages are about antibiotics in
    general names something the corpus mentions somewhere, but not where the answer would be.
    """
    limit = max(3, int(RARE_SHARE * max(len(index.chunks), 1)))
    shown = " ".join(f"{s.citation.title} {p.chunk.text}" for s in studies[:3] for p in s.passages)
    present = set(tokenize(shown))
    everyday = english_counts()
    absent = []
    for word in dict.fromkeys(re.findall(r"[^\W\d_][\w-]{2,}", question)):
        stems = tokenize(word)
        if not stems or everyday.get(word.lower(), 0) >= EVERYDAY:
            continue
        if all(index.keywords.doc_freq(t) <= limit and t not in present for t in stems):
            absent.append(word)
    return absent


def judge_coverage(
    studies: list[StudyHit],
    missing: list[str],
    reranked: bool,
    mode: str,
    absent: list[str] = (),
    floor: float = MIN_DENSE,
) -> tuple[bool, str]:
    """Whether any summary answers, and if not, why in plain words (`floor`: the least dense score)."""
    if not studies:
        return False, "No passage matched the question."
    best = max((p.rerank for s in studies for p in s.passages if p.rerank is not None), default=None)
    # A name no summary uses decides, unless the reranker is all but certain a passage answers
    # anyway (the question said "coronavirus", the summaries say "SARS-CoV-2"). The bar is high:
    # "Does oseltamivir help long COVID?" still scores 3.8 on a passage about another drug.
    if missing and not (reranked and best is not None and best >= CERTAIN_RERANK):
        return False, "No summary mentions " + _join(missing) + "."
    if reranked:
        if best is not None and best < MIN_RERANK:
            return False, "No passage answers this closely; the nearest ones are about something else."
        if absent and best is not None and best < UNSURE_RERANK:
            return False, "The closest summaries do not mention " + _join(list(absent)) + "."
        return True, ""
    dense = max((p.dense or 0.0) for s in studies[:3] for p in s.passages)
    if mode != "bm25" and dense < floor:
        return False, "No passage answers this closely; the nearest ones are about something else."
    return True, ""


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


# --- the whole search -------------------------------------------------------------------


def vocabulary_text(chunk: Chunk) -> str:
    """What the vocabulary (acronyms, spelling) learns from a passage: its study's title and text."""
    return f"{chunk.citation.title}\n{chunk.text}"


class Searcher:
    """Answers questions from one loaded index, running the stages above in order."""

    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        settings: SearchSettings | None = None,
        reranker: Reranker | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings or SearchSettings()
        if reranker is None and self.settings.rerank != "none":
            reranker = get_reranker(self.settings.rerank, self.settings.rerank_tokens)
        self.reranker = reranker if self.settings.rerank != "none" else None
        self._vocabulary = vocabulary
        self.retrievers: dict[str, Retriever] = {
            "dense": DenseRetriever(index, embedder),
            "bm25": KeywordRetriever(index),
        }
        self._running = 0  # searches in progress in this searcher (threads of one server)
        self._running_lock = threading.Lock()

    @contextmanager
    def _counted(self):
        """Count this search as running; yields how many others were already running."""
        with self._running_lock:
            others = self._running
            self._running += 1
        try:
            yield others
        finally:
            with self._running_lock:
                self._running -= 1

    @property
    def vocabulary(self) -> Vocabulary:
        """The index's words and acronyms (learned once, on first use)."""
        if self._vocabulary is None:
            self._vocabulary = Vocabulary.from_texts(vocabulary_text(c) for c in self.index.chunks.values())
        return self._vocabulary

    def understand(self, question: str) -> Understood:
        """Stage 1: spell out acronyms and correct typos against the corpus."""
        if not self.settings.understand:
            return Understood(question, question)
        return self.vocabulary.understand(question)

    def passages(
        self,
        question: str,
        filters: Filters = Filters(),
        mode: str | None = None,
        names: tuple[str, ...] | None = None,
    ) -> list[Passage]:
        """Stages 2-3: every candidate passage for a question, fused, best first, after filters."""
        mode = mode or self.settings.mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        # With filters on, look further down each list so enough allowed passages remain.
        n = self.index.vectors.ntotal if filters.active else self.settings.candidates
        names = names or (("dense", "bm25") if mode == "hybrid" else (mode,))
        chunks = self.index.chunks
        lists, scores = [], {}
        for name in names:
            found = [(i, s) for i, s in self.retrievers[name].retrieve(question, n) if i in chunks]
            found = [(i, s) for i, s in found if filters.allows(chunks[i].citation)]
            lists.append(found)
            scores[name] = dict(found)
        return [
            Passage(
                chunks[c],
                s,
                scores.get("dense", scores.get("multilingual", {})).get(c),
                scores.get("bm25", {}).get(c),
            )
            for c, s in fuse(lists)
        ]

    def search(
        self,
        question: str,
        k: int = 5,
        filters: Filters = Filters(),
        mode: str | None = None,
        per_study: int = 2,
        use_reranker: bool | None = None,
    ) -> Answer:
        """Rank studies for a question; each study carries the passage(s) that answer it."""
        with self._counted() as others:
            return self._search(question, k, filters, mode, per_study, use_reranker, others)

    def _search(
        self,
        question: str,
        k: int,
        filters: Filters,
        mode: str | None,
        per_study: int,
        use_reranker: bool | None,
        others: int,
    ) -> Answer:
        mode = mode or self.settings.mode
        question, k = question.strip(), max(1, k)
        settings = self.settings.describe()
        if not question:
            return Answer(question, (), False, "The question is empty.", filters, mode, settings=settings)
        typed, question = question, fit_question(clean_text(question), self.embedder.count_tokens)
        if not any(ch.isalnum() for ch in question):  # "🤒😴💊🧠" or "?!": nothing to search for
            return Answer(typed, (), False, NO_WORDS, filters, mode, settings=settings)
        # Another language (qa/models/multilingual.py): the multilingual stage alone ranks. The English
        # stages (typo fixes, words, English model, reranker) read its words as noise: fused in,
        # they lowered non-English hit@5 from 0.875 to 0.50 on tests/data/questions-multilingual.jsonl.
        lang = detect_language(question)
        understood = self.understand(question) if lang == "en" else Understood(question, question)
        text = understood.searched
        names = ("multilingual",) if lang != "en" and "multilingual" in self.retrievers else None
        studies = group_by_study(
            self.passages(text, filters, mode, names), self.index, text, mode == "hybrid" and lang == "en"
        )
        asked, use_reranker = use_reranker, self.reranker is not None and use_reranker is not False
        use_reranker = use_reranker and lang == "en"
        skipped = ""
        busy = self.settings.rerank_busy
        if use_reranker and asked is None and busy and others >= busy:
            use_reranker, skipped = False, "busy"  # `use_reranker=True` (eval, bench) always reranks
        if use_reranker:
            studies = rerank(text, studies, self.reranker, self.settings)
        hits = [
            StudyHit(
                rank=rank,
                doc_id=(shown := choose_passages(study, per_study))[0].chunk.doc_id,
                citation=shown[0].chunk.citation,
                score=study.score,
                passages=tuple(shown),
                also=tuple(n for n in study.files if n != shown[0].chunk.doc_id),
            )
            for rank, study in enumerate(studies[:k], start=1)
        ]
        # Words not in the English summaries say nothing when the question is not English.
        missing = (
            distinctive_missing(text, self.index, self.embedder, self.vocabulary) if lang == "en" else []
        )
        absent = absent_rare_words(text, hits, self.index) if use_reranker else []
        floor = MIN_DENSE
        if names == ("multilingual",):  # scores are multilingual-e5 cosines
            floor = MIN_MULTILINGUAL if len(question.split()) >= MIN_WORDS else 0.0
        covered, reason = judge_coverage(hits, missing, use_reranker, mode, absent, floor)
        return Answer(
            typed,
            tuple(hits),
            covered,
            reason,
            filters,
            mode,
            searched=text if understood.changed else "",
            corrections=understood.corrections,
            expansions=understood.expansions,
            settings=settings,
            language=lang,
            reranked=use_reranker,
            rerank_skipped=skipped,
            cut=question if question != typed else "",
        )
