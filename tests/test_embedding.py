"""One contract for every embedder (the `Embedder` protocol): the fake runs in the fast lane,
the real models (sentence-transformers, the numpy MiniLM, bge-small ONNX) in the full lane."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import FakeEmbedder

PASSAGES = [
    "Low-dose naltrexone reduced fatigue in some patients.",
    "Exercise made post-exertional malaise worse.",
    "Low-dose naltrexone reduced fatigue in some patients.",  # the same text twice
]


def _fake():
    return FakeEmbedder()


def _sentence_transformers():
    from qa.models.embedding import get_embedder

    return get_embedder("")


def _light():
    from qa.models.light import light_embedder

    return light_embedder()


def _bge_small():
    from qa.models.embedding import BGE_SMALL, get_embedder

    return get_embedder(BGE_SMALL)


BACKENDS = [
    pytest.param(_fake, id="fake"),
    pytest.param(_sentence_transformers, id="sentence-transformers", marks=pytest.mark.slow),
    pytest.param(_light, id="numpy-minilm", marks=pytest.mark.slow),
    pytest.param(_bge_small, id="bge-small-onnx", marks=pytest.mark.slow),
]


@pytest.fixture(params=BACKENDS)
def embedder(request):
    return request.param()


def test_passages_become_unit_vectors_of_the_recorded_dimension(embedder):
    vectors = embedder.encode(PASSAGES)
    assert vectors.shape == (3, embedder.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert np.allclose(vectors[0], vectors[2], atol=1e-5), "the same text, the same vector"
    assert embedder.encode([]).shape == (0, embedder.dimension)
    assert isinstance(embedder.name, str) and embedder.name and embedder.max_tokens > 0


def test_a_question_lands_nearest_the_passage_about_it(embedder):
    embedder.forget_queries()
    query = embedder.encode_query("Does low-dose naltrexone help fatigue?")
    assert query.shape == (embedder.dimension,)
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-3
    scores = embedder.encode(PASSAGES[:2]) @ query
    assert scores[0] > scores[1]


def test_tokens_are_counted_and_common_words_known(embedder):
    short, long = embedder.count_tokens("fatigue"), embedder.count_tokens("fatigue " * 50)
    assert 0 < short < long
    assert embedder.is_common_word("fatigue") in (True, False)
    assert embedder.is_common_word("the")
