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
    """Mark the best sentences of every passage in an answer (none when it is not covered).

    Passages whose sentences the reranker scored (`answer.marks`, qa/search/digest.py) are
    marked by those scores, the same that chose the digest; the others by the bi-encoder.
    """
    if not answer.covered:  # marking sentences would suggest they answer the question
        return {}
    shown = [(s.rank, n, p.chunk.text) for s in answer.studies for n, p in enumerate(s.passages)]
    rest = [(rank, n, text) for rank, n, text in shown if (rank, n) not in answer.marks]
    by_encoder = highlight_many(embedder, answer.question, [t for *_, t in rest], vectors) if rest else []
    found = {(rank, n): sentences for (rank, n, _), sentences in zip(rest, by_encoder)}
    result: Highlights = {}
    for rank, n, text in shown:
        scored = answer.marks.get((rank, n))
        if scored is not None:
            found[(rank, n)] = [
                _scored(sentence, scored.get(i)) for i, sentence in enumerate(sentences_of(text))
            ]
        result.setdefault(rank, []).append(found[(rank, n)])
    return result


def _scored(sentence: str, scored: tuple[float, bool] | None) -> Sentence:
    """A sentence marked by the reranker's (score, marked); one it did not read is unmarked."""
    score, marked = scored or (0.0, False)
    return Sentence(sentence, marked, score)
