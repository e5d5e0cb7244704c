"""Replaying deltas: the passages, vectors and keywords a small update removed and added, applied to a loaded index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.corpus.chunking import Chunk
from qa.index.files import chunk_from_json
from qa.index.keywords import study_text
from qa.index.segments import LayeredKeywords, LayeredStore
from qa.index.sentences import SentenceVectors


class Index(Protocol):
    """What replaying a delta changes of a loaded index (`qa.index.store.Index` is one)."""

    folder: Path
    chunks: dict[int, Chunk]
    vectors: LayeredStore
    keywords: LayeredKeywords
    study_keywords: LayeredKeywords

    def sentence_vectors(self) -> SentenceVectors:
        """The index's sentence vectors, made empty if there are none."""
        ...


def read_delta(folder: Path, gen: int) -> tuple[dict, list[tuple[int, Chunk]], np.ndarray, np.ndarray]:
    """(header, added chunks, their vectors, their sentence rows) of one delta."""
    with open(folder / f"delta-{gen}.jsonl", encoding="utf-8") as fh:
        header = json.loads(fh.readline())
        added = [chunk_from_json(line) for line in fh if line.strip()]
    vectors = np.load(folder / f"delta-{gen}.vectors.npy")
    rows = np.load(folder / f"delta-{gen}.sentences.npy")
    if len(vectors) != len(added):
        raise ValueError(f"delta-{gen}: {len(added)} passages but {len(vectors)} vectors")
    return header, added, vectors, rows


def apply_deltas(index: Index, deltas: list[int]) -> None:
    """Replay the deltas on a freshly loaded base (copy-on-write layers over it)."""
    index.vectors = LayeredStore(index.vectors)
    index.keywords = LayeredKeywords(index.keywords)
    index.study_keywords = LayeredKeywords(index.study_keywords)
    for gen in deltas:
        header, added, vectors, rows = read_delta(index.folder, gen)
        apply_change(index, [int(i) for i in header["removed"]], added, vectors)
        index.sentence_vectors().store_rows([c.text for _, c in added], header["sentences"], rows)


def apply_change(
    index: Index, removed: list[int], added: list[tuple[int, Chunk]], vectors: np.ndarray
) -> list[tuple[int, Chunk]]:
    """Remove chunk ids and add chunks (with their vectors) in every layer of a layered index.

    Returns the removed (id, chunk) pairs.
    """
    gone = [(cid, index.chunks.pop(cid)) for cid in removed if cid in index.chunks]
    index.vectors.remove(removed)
    index.vectors.add([cid for cid, _ in added], vectors)
    index.chunks.update(added)
    apply_keywords(index, gone, added)
    return gone


def apply_keywords(index: Index, gone: list[tuple[int, Chunk]], added: list[tuple[int, Chunk]]) -> None:
    """Unindex the `gone` passages and index the `added` ones in both layered keyword indexes."""
    index.keywords.remove([cid for cid, _ in gone], [c.embed_text for _, c in gone])
    by_doc: dict[str, list[Chunk]] = {}
    for _, chunk in sorted(gone, key=lambda item: item[0]):
        by_doc.setdefault(chunk.doc_id, []).append(chunk)
    index.study_keywords.remove(list(by_doc), [study_text(chunks) for chunks in by_doc.values()])
    index.keywords.add([cid for cid, _ in added], [c.embed_text for _, c in added])
    # An added or changed summary comes with all its passages, in id (reading) order.
    new_docs: dict[str, list[Chunk]] = {}
    for _, chunk in sorted(added, key=lambda item: item[0]):
        new_docs.setdefault(chunk.doc_id, []).append(chunk)
    index.study_keywords.add(list(new_docs), [study_text(chunks) for chunks in new_docs.values()])
