"""Question → ranked studies with the passages that answer them, as a sequence of named stages.

    understand → retrieve (dense, BM25) → fuse → group by study → rerank → choose passages
    → judge coverage

`Searcher` runs the stages in order: each is a plain function in `qa.search.stages` (retrieve to
choose passages) or `qa.search.coverage` (judge coverage), over the types of `qa.search.types`.
The parts that get swapped sit behind small interfaces:
a `Retriever` (dense vectors, BM25, or another one such as a multilingual model), the
`Embedder`, and the `Reranker` (`qa/models/rerank.py`). `SearchSettings` holds everything that
changes results; `SearchSettings.describe()` is recorded with each answer.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from qa.config import MODES
from qa.corpus.chunking import Chunk
from qa.index.store import Index
from qa.models.embedding import Embedder
from qa.models.multilingual import detect_language
from qa.models.rerank import Reranker, get_reranker
from qa.search.coverage import (
    absent_rare_words,
    distinctive_missing,
    judge_coverage,
)
from qa.search.digest import quote
from qa.search.question import clean_text, fit_question
from qa.search.stages import (
    MULTILINGUAL,
    DenseRetriever,
    KeywordRetriever,
    Retriever,
    choose_passages,
    fuse,
    group_by_study,
    rerank,
)
from qa.search.types import Answer, Filters, Passage, SearchSettings, StudyHit
from qa.search.verdict import Evidence, gather, judge
from qa.search.vocabulary import Understood, Vocabulary

#: While a server still embeds the multilingual stage; the shown answer says it in the question's
#: language (the same words as qa/present/translations.py's "preparing").
PREPARING = (
    "The search for questions in other languages is still being prepared. "
    "Please ask again in a minute, or ask in English."
)
NO_WORDS = "The question has no words to search for: ask in words, for example “Does pacing help?”."


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
            DenseRetriever.name: DenseRetriever(index, embedder),
            KeywordRetriever.name: KeywordRetriever(index),
        }
        self._running = 0  # searches in progress in this searcher (threads of one server)
        self._running_lock = threading.Lock()

    def add_retriever(self, name: str, retriever: Retriever) -> None:
        """Register another first stage (the multilingual one: `MULTILINGUAL`)."""
        self.retrievers[name] = retriever

    def retriever(self, name: str) -> Retriever | None:
        """A registered first stage by name, or None."""
        return self.retrievers.get(name)

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
            retriever = self.retrievers[name]
            if filters.active and getattr(retriever, "filters_inside", False):
                # It filters itself (PostgreSQL's SQL, the keyword index's mask): the usual depth.
                found = retriever.retrieve(question, self.settings.candidates, filters)
            else:
                found = retriever.retrieve(question, n)
            found = [(i, s) for i, s in found if i in chunks]
            found = [
                (i, s)
                for i, s in found
                if filters.allows(chunks[i].citation) and chunks[i].doc_id not in filters.exclude
            ]
            # The best `candidates` allowed passages of each list, however they were filtered, so
            # a filtered search fuses lists as deep as an unfiltered one, in every store.
            found = found[: self.settings.candidates]
            lists.append(found)
            scores[name] = dict(found)
        return [
            Passage(
                chunks[c],
                s,
                scores.get("dense", scores.get(MULTILINGUAL, {})).get(c),
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
        if self.reranker is not None:  # what "not covered" means comes with the reranker
            settings["calibration"] = self.reranker.calibration.describe()
            if self.reranker.verdict is not None:
                settings["verdict"] = self.reranker.verdict.describe()
        if not question:
            return Answer(question, (), False, "The question is empty.", filters, mode, settings=settings)
        typed, question = question, fit_question(clean_text(question), self.embedder.count_tokens)
        if not any(ch.isalnum() for ch in question):  # "🤒😴💊🧠" or "?!": nothing to search for
            return Answer(typed, (), False, NO_WORDS, filters, mode, settings=settings)
        # Another language (qa/models/multilingual.py): the multilingual stage alone ranks. The English
        # stages (typo fixes, words, English model, reranker) read its words as noise: fused in,
        # they lowered non-English hit@5 from 0.875 to 0.50 on tests/data/questions-multilingual.jsonl.
        lang = detect_language(question)
        stage = self.retrievers.get(MULTILINGUAL)
        if lang != "en" and getattr(stage, "preparing", False):
            return Answer(
                typed, (), False, PREPARING, filters, mode, settings=settings, language=lang, preparing=True
            )
        understood = self.understand(question) if lang == "en" else Understood(question, question)
        text = understood.searched
        names = (MULTILINGUAL,) if lang != "en" and MULTILINGUAL in self.retrievers else None
        studies = group_by_study(
            self.passages(text, filters, mode, names), self.index, text, mode == "hybrid" and lang == "en"
        )
        reranked, skipped = self._reranks(use_reranker, others, lang)
        if reranked:
            studies = rerank(text, studies, self.reranker, self.settings)
        hits = _study_hits(studies[:k], per_study)
        evidence = gather(text, studies, self.index, filters.exclude) if reranked else None
        covered, reason, coverage = self._judge(text, question, hits, mode, lang, evidence)
        quotes, marks = (), {}
        quoting = reranked and covered and bool(self.settings.digest_studies)
        if quoting:
            quotes, marks = quote(text, hits, self.reranker, self.settings.digest_studies)
        return Answer(
            typed,
            hits,
            covered,
            reason,
            filters,
            mode,
            searched=text if understood.changed else "",
            corrections=understood.corrections,
            expansions=understood.expansions,
            settings=settings,
            language=lang,
            reranked=reranked,
            rerank_skipped=skipped,
            cut=question if question != typed else "",
            quoted=quoting,
            digest=quotes,
            marks=marks,
            coverage=coverage,
            evidence=evidence.values if evidence else {},
        )

    def _reranks(self, asked: bool | None, others: int, lang: str) -> tuple[bool, str]:
        """Whether this search reranks, and why not when the reranker is on but skipped ("busy")."""
        use = self.reranker is not None and asked is not False and lang == "en"
        busy = self.settings.rerank_busy
        if use and asked is None and busy and others >= busy:
            return False, "busy"  # `use_reranker=True` (eval, bench) always reranks
        return use, ""

    def _judge(
        self,
        text: str,
        question: str,
        hits: tuple[StudyHit, ...],
        mode: str,
        lang: str,
        evidence: Evidence | None,
    ) -> tuple[bool, str, float | None]:
        """Stage 7: whether the studies found answer the question, why not in words, and how likely.

        After the reranker, its fitted verdict (qa/search/verdict.py) decides; without one (no
        reranker, another language, a reranker never fitted) the hand-set rules of
        qa/search/coverage.py do.
        """
        if evidence is not None and self.reranker.verdict is not None:
            return judge(evidence, self.reranker.verdict, self.reranker.calibration.certain)
        reranked = evidence is not None
        # Words not in the English summaries say nothing when the question is not English.
        english = lang == "en"
        missing = distinctive_missing(text, self.index, self.embedder, self.vocabulary) if english else []
        s = self.settings
        absent = absent_rare_words(text, hits, self.index, s.rare_share, s.everyday_count) if reranked else []
        floor = s.min_dense
        if not english and MULTILINGUAL in self.retrievers:  # scores are multilingual-e5 cosines
            floor = s.min_multilingual if len(question.split()) >= s.min_multilingual_words else 0.0
        calibration = self.reranker.calibration if reranked else None
        return (*judge_coverage(list(hits), missing, calibration, mode, absent, floor), None)


def _study_hits(studies: list, per_study: int) -> tuple[StudyHit, ...]:
    """The answer's studies, ranked, each with the passages it shows."""
    return tuple(
        StudyHit(
            rank=rank,
            doc_id=(shown := choose_passages(study, per_study))[0].chunk.doc_id,
            citation=shown[0].chunk.citation,
            score=study.score,
            passages=tuple(shown),
            also=tuple(n for n in study.files if n != shown[0].chunk.doc_id),
        )
        for rank, study in enumerate(studies, start=1)
    )
