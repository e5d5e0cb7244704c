"""Shared fixtures: paths to the shared corpus, the real bundled model, a real corpus index."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus" / "summaries"
THREADS = SHARED / "corpus" / "threads"
EVAL_QUESTIONS = SHARED / "eval" / "questions-dev.jsonl"
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def embedder():
    """The real bundled all-MiniLM-L6-v2, loaded once."""
    from qa.models.embedding import get_embedder

    return get_embedder("")


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory, embedder):
    """A real index of the 317 shared summaries, built once per test session."""
    from qa.corpus.documents import load_folder
    from qa.index.update import update_index

    folder = tmp_path_factory.mktemp("corpus-index")
    index, _ = update_index(folder, load_folder(CORPUS), embedder)
    return index


@pytest.fixture(scope="session")
def corpus_searcher(corpus_index, embedder):
    """A `Searcher` over the corpus index."""
    from qa.search.pipeline import Searcher

    return Searcher(corpus_index, embedder)


# The full lane: suites that launch servers, browsers or subprocesses, and every test marked `slow`
# (real models, servers). `make test`
# runs the rest (the fast default lane); `make test-full` runs these; CI runs both.
FULL_LANE = {"test_browser.py", "test_reliability.py", "test_multiprocess.py"}


def pytest_collection_modifyitems(config, items):
    """Mark every test of the full-lane files with `full`."""
    for item in items:
        if item.path.name in FULL_LANE:
            item.add_marker(pytest.mark.full)
