"""The evidence a search gathers on whether any summary answers, and the fitted verdict's reading of it.

The features are what the search already computed: the reranker's scores of the leading
studies, and how much of the question's wording (weighted by rarity) the best passages and the
corpus use. A logistic regression over them (qa/models/verdict.py), fitted by `bench/verdict.py`
on questions with and without an answer, replaces hand-set thresholds.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from qa.index.keywords import tokenize
from qa.index.store import Index
from qa.models.verdict import Verdict
from qa.search.stages import StudyGroup
from qa.search.vocabulary import english_counts

#: The feature names, in the order the verdict stores its weights.
FEATURES = ("best", "gap", "top3", "above", "words", "unknown", "names", "dense", "length")
#: A lone study's gap is taken as this (and larger gaps are cut to it): beyond it the odds no longer change.
MAX_GAP = 10.0
#: A word the reason may name is one at most this share of passages use: "help" or "people"
#: missing from the best passages says nothing about what the question is after.
RARE_SHARE = 0.01
#: A word general English uses less than this often (symspellpy's counts: "kidney" 7.5 million,
#: "roughage" 57,000, "hydroxychloroquine" and "guanfacine" 0) names something: a drug, a gene.
NAME_COUNT = 10_000
_WORD = re.compile(r"[^\W\d_][\w-]{1,}")


@dataclass(frozen=True)
class Evidence:
    """Per question: the features the verdict reads, and the words its reason can name."""

    values: dict
    #: Words of the question the best passages never use, most distinctive first.
    absent: tuple[str, ...] = ()
    #: Words that name something (rare in general English) no summary that could answer uses.
    nowhere: tuple[str, ...] = ()


def gather(text: str, studies: list[StudyGroup], index: Index, exclude: tuple[str, ...] = ()) -> Evidence:
    """The evidence for a reranked search of `text` (studies best first; `exclude`: doc ids left out)."""
    scores = [s.score for s in studies if s.reranked]
    best = scores[0] if scores else -MAX_GAP
    second = scores[1] if len(scores) > 1 else best - MAX_GAP
    top = studies[:3]
    shown = " ".join(
        f"{s.passages[0].chunk.citation.title} "
        + " ".join(p.chunk.text for p in s.passages if p.rerank is not None)
        for s in top
        if s.passages
    )
    present = set(tokenize(shown))
    df = _doc_freq(index, exclude)
    weights = _rarity(text, len(index.chunks), df)
    total = sum(weights.values()) or 1.0
    found = sum(w for t, w in weights.items() if t in present)
    unseen = sum(w for t, w in weights.items() if df(t) == 0)
    names = _names(text, df)
    dense = max((p.dense or 0.0 for s in top for p in s.passages if p.rerank is not None), default=0.0)
    values = {
        "best": best,
        "gap": min(best - second, MAX_GAP),
        "top3": sum(scores[:3]) / 3 if len(scores) >= 3 else (sum(scores) - MAX_GAP * (3 - len(scores))) / 3,
        "above": float(sum(score > 0 for score in scores)),
        "words": found / total,
        "unknown": unseen / total,
        # 1 when the question names something (a rare word of general English) no summary that
        # could answer uses: "Does hydroxychloroquine help long covid?"
        "names": float(bool(names)),
        "dense": dense,
        "length": math.log1p(len(weights)),
    }
    absent = _absent_words(text, present, weights, _idf(len(index.chunks), RARE_SHARE * len(index.chunks)))
    return Evidence(values, absent, tuple(names))


def named_unknown(values: dict, certain: float) -> bool:
    """Whether the question names something no summary uses, and the reranker is not all but certain.

    A rule beside the fitted verdict: such questions are few in any training set (the fitted
    weight stayed small), yet "Does hydroxychloroquine help long covid?" must not be answered
    with passages about other drugs, which the reranker scores up to 5.
    """
    return bool(values.get("names")) and values["best"] < certain


def judge(evidence: Evidence, verdict: Verdict, certain: float) -> tuple[bool, str, float]:
    """Whether a summary answers, why not in plain words, and the verdict's probability.

    `certain` is the reranker score from which a passage answers even a question that names
    something no summary mentions (the question said "coronavirus", the summaries "SARS-CoV-2").
    """
    probability = verdict.probability(evidence.values)
    if probability >= verdict.threshold and not named_unknown(evidence.values, certain):
        return True, "", probability
    if evidence.nowhere:
        return False, "No summary mentions " + join_words(list(evidence.nowhere[:3])) + ".", probability
    if evidence.absent:
        words = join_words(list(evidence.absent[:3]))
        return False, f"The closest summaries do not mention {words}.", probability
    return False, "No passage answers this closely; the nearest ones are about something else.", probability


def join_words(words: list[str]) -> str:
    """ "a", "a or b", "a, b or c"."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _idf(n: int, df: float) -> float:
    """BM25's rarity of a token that `df` of `n` passages use."""
    return math.log(1.0 + (max(n, 1) - df + 0.5) / (df + 0.5))


def _doc_freq(index: Index, exclude: tuple[str, ...]) -> Callable[[str], int]:
    """How many passages use a token, not counting those of the excluded summaries."""
    if not exclude:  # every search but the bench's leave-out ones: no pass over the passages
        return index.keywords.doc_freq
    left_out: Counter = Counter()
    for doc_id in exclude:
        for chunk in index.chunks_of(doc_id):
            left_out.update(set(tokenize(chunk.text)))
    return lambda token: max(index.keywords.doc_freq(token) - left_out[token], 0)


def _rarity(text: str, n: int, df: Callable[[str], int]) -> dict[str, float]:
    """Each distinct token of the question with its rarity among the passages that may answer."""
    return {token: _idf(n, df(token)) for token in dict.fromkeys(tokenize(text))}


def _names(text: str, df: Callable[[str], int]) -> list[str]:
    """Words of the question that name something no summary that could answer uses."""
    counts = english_counts()
    return [
        word
        for word in dict.fromkeys(_WORD.findall(text))
        if (tokens := tokenize(word))
        and all(df(t) == 0 for t in tokens)
        and (counts.get(word.lower(), 0) < NAME_COUNT or (word.isupper() and len(word) >= 3))
    ]


def _absent_words(text: str, present: set[str], weights: dict[str, float], rare: float) -> tuple[str, ...]:
    """The question's rare words (as typed) that the best passages lack, most distinctive first."""
    absent: dict[str, float] = {}
    for word in _WORD.findall(text):
        tokens = [t for t in tokenize(word) if t in weights]
        if not tokens or any(t in present for t in tokens) or word.lower() in {w.lower() for w in absent}:
            continue
        if max(weights[t] for t in tokens) >= rare:
            absent[word] = max(weights[t] for t in tokens)
    return tuple(sorted(absent, key=absent.get, reverse=True))
