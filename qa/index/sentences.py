"""Sentence vectors for highlighting, embedded once at index time and stored beside the index.

Marking the sentences that answer needs a vector per sentence of every shown passage; embedding
them per question cost most of a request (issue 10). They are embedded when a passage is
indexed and written with each generation as `sentences-N.npy` (float16, one row per sentence,
memory-mapped so several server processes share one copy in the page cache) and
`sentences-N.ids.npy` (chunk id and sentence count per passage), before the manifest switch.
An update reuses the rows of unchanged passages (by text) and embeds only new ones. An index
written before this existed gets its file on its next update; meanwhile, and for any text not
stored, vectors are embedded on first use and kept in memory (`SentenceVectors.lookup`).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.corpus.chunking import split_sentences

if TYPE_CHECKING:
    from qa.corpus.chunking import Chunk
    from qa.models.embedding import Embedder

#: Passages whose sentence vectors are kept in memory when not stored (LRU).
CACHE_PASSAGES = 4096


def sentences_of(text: str) -> list[str]:
    """The sentences highlighting works on (a passage with no boundary is one sentence)."""
    return split_sentences(text) or [text]


def _paths(folder: Path, generation: int) -> tuple[Path, Path]:
    return folder / f"sentences-{generation}.npy", folder / f"sentences-{generation}.ids.npy"


class SentenceVectors:
    """Per passage text, the unit vectors of its sentences: stored ones, then a small cache."""

    def __init__(self, model: str, stored: dict[str, np.ndarray] | None = None) -> None:
        self.model = model
        self.stored = stored or {}
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def fork(self) -> SentenceVectors:
        """A copy whose additions the original never sees (the vectors themselves are shared)."""
        return SentenceVectors(self.model, dict(self.stored))

    def get(self, text: str) -> np.ndarray | None:
        """The sentence vectors of a passage, if stored or cached."""
        found = self.stored.get(text)
        if found is not None:
            return found
        with self._lock:
            found = self._cache.get(text)
            if found is not None:
                self._cache.move_to_end(text)
        return found

    def lookup(self, texts: list[str], embedder: Embedder) -> list[np.ndarray]:
        """Sentence vectors of each passage; passages not stored are embedded in one call and cached."""
        found = [self.get(t) for t in texts]
        missing = sorted({t for t, f in zip(texts, found) if f is None})
        if missing:
            split = [sentences_of(t) for t in missing]
            flat = embedder.encode([s for sentences in split for s in sentences])
            fresh, at = {}, 0
            for text, sentences in zip(missing, split):
                fresh[text] = flat[at : at + len(sentences)]
                at += len(sentences)
            with self._lock:
                self._cache.update(fresh)
                while len(self._cache) > CACHE_PASSAGES:
                    self._cache.popitem(last=False)
            # From what was just embedded, not the cache: a build embeds more than the cache holds.
            found = [f if f is not None else fresh[t] for t, f in zip(texts, found)]
        return found  # type: ignore[return-value]

    def rows(self, chunks: dict[int, Chunk], embedder: Embedder) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) for every passage of `chunks`, reusing what is known, embedding the rest."""
        ordered = sorted(chunks)
        vectors = self.lookup([chunks[cid].text for cid in ordered], embedder)
        ids = np.asarray([(cid, len(v)) for cid, v in zip(ordered, vectors)], dtype=np.int64).reshape(-1, 2)
        if not vectors:
            return ids, np.zeros((0, embedder.dimension), dtype=np.float16)
        return ids, np.concatenate(vectors).astype(np.float16)

    def keep(self, kept: dict[str, np.ndarray]) -> None:
        """Take vectors embedded earlier (a failed save's) for texts not stored yet."""
        for text, vectors in kept.items():
            self.stored.setdefault(text, vectors)

    def add_rows(self, texts: list[str], embedder: Embedder) -> tuple[np.ndarray, np.ndarray]:
        """Sentence vectors of new passages, stored here: (sentence count per passage, float16 rows).

        What a delta (qa/index/segments.py) writes instead of every passage's rows.
        """
        vectors = [np.asarray(v, dtype=np.float16) for v in self.lookup(texts, embedder)]
        for text, rows in zip(texts, vectors):
            self.stored[text] = rows
        counts = np.asarray([len(v) for v in vectors], dtype=np.int64)
        if not vectors:
            return counts, np.zeros((0, embedder.dimension), dtype=np.float16)
        return counts, np.concatenate(vectors)

    def store_rows(self, texts: list[str], counts: list[int], vectors: np.ndarray) -> None:
        """Put rows read from a delta into the store (the inverse of `add_rows`)."""
        if int(sum(counts)) != len(vectors):
            return  # damaged: those passages' sentences are embedded on first use instead
        at = 0
        for text, count in zip(texts, counts):
            self.stored[text] = vectors[at : at + count]
            at += count

    @classmethod
    def load(cls, folder: Path, generation: int, model: str, chunks: dict[int, Chunk]) -> SentenceVectors:
        """The stored sentence vectors of one generation (memory-mapped); empty when there are none."""
        vectors_path, ids_path = _paths(folder, generation)
        try:
            ids = np.load(ids_path)
            vectors = np.load(vectors_path, mmap_mode="r")
        except (OSError, ValueError):  # none yet (an older index), or damaged: embed on first use
            return cls(model)
        if len(ids) and int(ids[:, 1].sum()) != len(vectors):
            return cls(model)
        return cls.from_rows(model, chunks, ids, vectors)

    @classmethod
    def from_rows(
        cls, model: str, chunks: dict[int, Chunk], ids: np.ndarray, vectors: np.ndarray
    ) -> SentenceVectors:
        """The vectors of `rows`' (ids, vectors) by passage text; ids no longer in `chunks` are skipped."""
        stored: dict[str, np.ndarray] = {}
        at = 0
        for cid, count in ids.tolist():
            chunk = chunks.get(cid)
            if chunk is not None:
                stored[chunk.text] = vectors[at : at + count]
            at += count
        return cls(model, stored)


def refreshed(
    known: SentenceVectors | None, chunks: dict[int, Chunk], embedder: Embedder
) -> tuple[SentenceVectors, tuple[np.ndarray, np.ndarray]]:
    """Sentence vectors for every passage of `chunks` (reusing `known` ones), and the rows to write."""
    if known is None or known.model != embedder.name:
        known = SentenceVectors(embedder.name)
    ids, vectors = known.rows(chunks, embedder)
    return SentenceVectors.from_rows(embedder.name, chunks, ids, vectors), (ids, vectors)


def npy_bytes(array: np.ndarray) -> bytes:
    """`array` as the bytes of a .npy file."""
    return _npy_bytes(array)


def write(folder: Path, generation: int, rows, write_file, written: list[Path]) -> None:
    """Write the sentence files of a generation with `write_file(path, bytes)`, noting each in `written`."""
    if rows is None:
        return
    for path, array in zip(_paths(folder, generation), (rows[1], rows[0])):
        written.append(path)  # before writing: a failed write is removed too
        write_file(path, _npy_bytes(array))


def write_live(folder: Path, generation: int, rows: tuple[np.ndarray, np.ndarray], write_file) -> None:
    """Add the sentence files to a live generation (one written before they existed), each by an atomic rename."""
    vectors_path, ids_path = _paths(folder, generation)
    # The ids file is what `load` reads first: write it last.
    for path, array in ((vectors_path, rows[1]), (ids_path, rows[0])):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        write_file(tmp, _npy_bytes(array))
        os.replace(tmp, path)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()
