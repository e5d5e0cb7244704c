"""Mark the sentences of a passage that best answer the question (same model; nothing generated)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa.chunking import split_sentences
from qa.embedding import Embedder
from qa.search import Answer

MIN_SIMILARITY = 0.25  # below this no sentence is marked: it would mislead
NEAR_BEST = 0.06  # other sentences this close to the best one are marked too


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage, and whether it answers the question best."""

    text: str
    marked: bool
    similarity: float


def highlight_many(embedder: Embedder, question: str, passages: list[str]) -> list[list[Sentence]]:
    """Split each passage into sentences and mark the best ones, with one model call."""
    split = [split_sentences(p) or [p] for p in passages]
    flat = [s for sentences in split for s in sentences]
    if not flat:
        return [[] for _ in passages]
    sims = embedder.encode(flat) @ embedder.encode_query(question)
    result, start = [], 0
    for sentences in split:
        part = sims[start : start + len(sentences)]
        start += len(sentences)
        best = float(np.max(part)) if len(part) else 0.0
        result.append(
            [
                Sentence(s, bool(best >= MIN_SIMILARITY and sim >= best - NEAR_BEST), float(sim))
                for s, sim in zip(sentences, part)
            ]
        )
    return result


#: Per study rank, for each shown passage, its sentences with marks.
Highlights = dict[int, list[list[Sentence]]]


def highlight_answer(embedder: Embedder, answer: Answer) -> Highlights:
    """Mark the best sentences of every passage in an answer (none when it is not covered)."""
    if not answer.covered:  # marking sentences would suggest they answer the question
        return {}
    texts = [p.chunk.text for s in answer.studies for p in s.passages]
    marked = highlight_many(embedder, answer.question, texts) if texts else []
    result, at = {}, 0
    for study in answer.studies:
        result[study.rank] = marked[at : at + len(study.passages)]
        at += len(study.passages)
    return result
