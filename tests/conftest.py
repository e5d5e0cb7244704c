"""Shared fixtures: paths to the shared corpus, the real bundled model, a real corpus index."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus" / "summaries"
THREADS = SHARED / "corpus" / "threads"
EVAL_QUESTIONS = SHARED / "eval" / "questions-dev.jsonl"
SEEDS = ROOT / "seeds"


class FakeEmbedder:
    """Bag-of-words vectors (each word hashed to a dimension): deterministic, instant, no model.

    For unit tests of one stage and of the pipeline's wiring; the real model's behaviour is
    tested in the full lane.
    """

    name = "fake-bag-of-words"
    dimension = 64
    max_tokens = 256

    def _vector(self, text: str):
        import zlib

        import numpy as np

        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in text.lower().split():
            vector[zlib.crc32(word.strip(".,;:?!()").encode()) % self.dimension] += 1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    def encode(self, texts, progress=False):
        import numpy as np

        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension), "f4")

    def encode_query(self, text):
        return self._vector(text)

    def forget_queries(self):
        pass

    def count_tokens(self, text):
        return len(text.split()) + 2

    def is_common_word(self, word):
        return True


@pytest.fixture(scope="session")
def fake_embedder():
    """An embedder with no model (see `FakeEmbedder`)."""
    return FakeEmbedder()


@pytest.fixture
def three_studies(tmp_path, fake_embedder):
    """A real index (fake embedder) of three one-finding summaries: pacing, naltrexone, tilt."""
    from qa.corpus.documents import load_folder
    from qa.index.update import update_index

    index, _ = update_index(tmp_path / "index", load_folder(three_summaries(tmp_path)), fake_embedder)
    return index


def three_summaries(folder: Path) -> Path:
    """`folder`/docs with three one-finding summaries: pacing, naltrexone, tilt."""
    docs = folder / "docs"
    docs.mkdir()
    write_summary(
        docs, "pacing.md", "Pacing and energy envelopes", "Pacing reduced crashes in 40 of 50 people."
    )
    write_summary(docs, "ldn.md", "Low-dose naltrexone in ME/CFS", "Naltrexone eased pain for some patients.")
    write_summary(docs, "tilt.md", "Tilt tests and blood flow", "Cerebral blood flow fell during tilt.")
    return docs


def write_summary(folder: Path, name: str, title: str, found: str, doi: str = "") -> Path:
    """A small summary file in the corpus's format, with one findings section."""
    link = f"- **Link:** [DOI](https://doi.org/{doi})\n" if doi else ""
    path = folder / name
    path.write_text(
        f"---\ntitle: \"{title}\"\ntags:\n- 💊 Treatment\ncreated: '2025-01-02'\npublished: '2025-01-02'\n---\n\n"
        f"<details>\n<summary>Author et al. (2025)</summary>\n\n- **Authors:** A. Author\n{link}\n</details>\n\n"
        f"## Summary\n\n{title}.\n\n## What has been found?\n\n{found}\n",
        encoding="utf-8",
    )
    return path


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
