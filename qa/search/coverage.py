"""Judge coverage: whether any summary answers a question, and if not, why in plain words.

The thresholds are on the bundled cross-encoder's logit scale (and multilingual-e5's cosine)."""

from __future__ import annotations

import re

from qa.index.keywords import tokenize
from qa.index.store import Index
from qa.models.embedding import Embedder
from qa.models.rerank import Calibration
from qa.search.types import SearchSettings, StudyHit
from qa.search.vocabulary import Vocabulary, english_counts

# --- judge coverage ---------------------------------------------------------------------

# The reranker's own thresholds (floor, unsure, certain) come with it: `Reranker.calibration`
# (qa/models/rerank.py), so a second reranker cannot silently change what "not covered" means.
# The other thresholds (dense and multilingual floors, rare and everyday words) are fields of
# `SearchSettings` (qa/search/types.py), recorded with each answer.
#: Without a reranker: the dense similarity below which nothing is close enough.
MIN_DENSE = SearchSettings.min_dense
#: The same for a question in another language, on multilingual-e5's cosine (see SearchSettings).
MIN_MULTILINGUAL = SearchSettings.min_multilingual
MIN_WORDS = SearchSettings.min_multilingual_words


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


def absent_rare_words(
    question: str,
    studies: list[StudyHit],
    index: Index,
    rare_share: float = SearchSettings.rare_share,
    everyday_count: int = SearchSettings.everyday_count,
) -> list[str]:
    """Rare words of the question that the best studies' shown passages and titles never use.

    A question about "urinary tract infection" whose nearest passages are about antibiotics in
    general names something the corpus mentions somewhere, but not where the answer would be.
    """
    limit = max(3, int(rare_share * max(len(index.chunks), 1)))
    shown = " ".join(f"{s.citation.title} {p.chunk.text}" for s in studies[:3] for p in s.passages)
    present = set(tokenize(shown))
    everyday = english_counts()
    absent = []
    for word in dict.fromkeys(re.findall(r"[^\W\d_][\w-]{2,}", question)):
        stems = tokenize(word)
        if not stems or everyday.get(word.lower(), 0) >= everyday_count:
            continue
        if all(index.keywords.doc_freq(t) <= limit and t not in present for t in stems):
            absent.append(word)
    return absent


def judge_coverage(
    studies: list[StudyHit],
    missing: list[str],
    calibration: Calibration | None,
    mode: str,
    absent: list[str] = (),
    floor: float = MIN_DENSE,
) -> tuple[bool, str]:
    """Whether any summary answers, and if not, why in plain words.

    `calibration` is the reranker's when it ordered the studies (None when it did not);
    `floor` is the least dense score that can answer without it.
    """
    if not studies:
        return False, "No passage matched the question."
    best = max((p.rerank for s in studies for p in s.passages if p.rerank is not None), default=None)
    # A name no summary uses decides, unless the reranker is all but certain a passage answers
    # anyway (the question said "coronavirus", the summaries say "SARS-CoV-2"). The bar is high:
    # "Does oseltamivir help long COVID?" still scores 3.8 on a passage about another drug.
    if missing and not (calibration and best is not None and best >= calibration.certain):
        return False, "No summary mentions " + _join(missing) + "."
    if calibration:
        if best is not None and best < calibration.floor:
            return False, "No passage answers this closely; the nearest ones are about something else."
        if absent and best is not None and best < calibration.unsure:
            return False, "The closest summaries do not mention " + _join(list(absent)) + "."
        return True, ""
    dense = max((p.dense or 0.0) for s in studies[:3] for p in s.passages)
    if mode != "bm25" and dense < floor:
        return False, "No passage answers this closely; the nearest ones are about something else."
    return True, ""


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
