"""Mark the sentences of a passage that best answer the question (same model; nothing generated)."""

from __future__ import annotations

import numpy as np

from qa.index.sentences import SentenceVectors, sentences_of
from qa.models.embedding import Embedder
from qa.present.view import MIN_SIMILARITY, Sentence
from qa.search.types import Answer

NEAR_BEST = 0.04  # a second sentence this close to the best one is marked too
MAX_MARKED = 2  # per passage: a reader should see at a glance what answers, not half the text


def highlight_many(
    embedder: Embedder, question: str, passages: list[str], vectors: SentenceVectors | None = None
) -> list[list[Sentence]]:
    """Split each passage into sentences and mark the best ones.

    Sentence vectors come from `vectors` (stored at index time) when given; the rest are
    embedded in one model call.
    """
    split = [sentences_of(p) for p in passages]
    if not any(split):
        return [[] for _ in passages]
    vectors = vectors or SentenceVectors(embedder.name)
    query = embedder.encode_query(question)
    result = []
    for sentences, found in zip(split, vectors.lookup(passages, embedder)):
        if len(found) != len(sentences):  # stored by another sentence splitter: embed afresh
            found = embedder.encode(sentences)
        # float16 on disk; the products are exact enough for a 0.04 margin (cosine error < 1e-3)
        part = np.asarray(found, dtype=np.float32) @ query
        best = float(np.max(part)) if len(part) else 0.0
        # The best sentence, and the runner-up only when it is nearly as close; one-sentence
        # passages are left unmarked (marking all of a passage says nothing).
        cap = min(MAX_MARKED, max(1, len(part) // 3))  # at most a third of a passage (at least one)
        top = [int(i) for i in np.argsort(-part)[:cap]] if len(part) > 1 else []
        marked = {i for i in top if best >= MIN_SIMILARITY and part[i] >= best - NEAR_BEST}
        result.append(
            [Sentence(s, i in marked, float(sim)) for i, (s, sim) in enumerate(zip(sentences, part))]
        )
    return result


#: Per study rank, for each shown passage, its sentences with marks.
Highlights = dict[int, list[list[Sentence]]]


def highlight_answer(
    embedder: Embedder, answer: Answer, vectors: SentenceVectors | None = None
) -> Highlights:
    """Mark the best sentences of every passage in an answer (none when it is not covered)."""
    if not answer.covered:  # marking sentences would suggest they answer the question
        return {}
    texts = [p.chunk.text for s in answer.studies for p in s.passages]
    marked = highlight_many(embedder, answer.question, texts, vectors) if texts else []
    result, at = {}, 0
    for study in answer.studies:
        result[study.rank] = marked[at : at + len(study.passages)]
        at += len(study.passages)
    return result
