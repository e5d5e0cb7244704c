"""Sentence vectors for highlighting: a build larger than the in-memory cache still gets all of them."""

from __future__ import annotations

import numpy as np

import qa.index.sentences as sentences


class _CountingEmbedder:
    """Unit vectors numbered by call order: enough to see which sentences were embedded."""

    name, dimension = "fake", 4

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.tile(np.eye(4, dtype=np.float32)[0], (len(texts), 1))


def test_more_passages_than_the_cache_holds_all_get_their_sentences(monkeypatch):
    monkeypatch.setattr(sentences, "CACHE_PASSAGES", 2)
    texts = [f"Passage {i} says one thing. It says a second thing too." for i in range(10)]
    found = sentences.SentenceVectors("fake").lookup(texts, _CountingEmbedder())
    assert [len(v) for v in found] == [2] * 10


def test_known_passages_are_not_embedded_again():
    store = sentences.SentenceVectors("fake")
    embedder = _CountingEmbedder()
    texts = ["One sentence. Two sentences."]
    store.lookup(texts, embedder)
    store.lookup(texts, embedder)
    assert embedder.calls == 1
