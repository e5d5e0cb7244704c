"""Writing what an update embedded: the passages' vectors, then a delta or a whole generation.

The steps after planning (`qa.index.update`): embed the new passages, reusing what a failed
save kept (`RetryCache`), then write only what changed (a delta) or a whole new generation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.corpus.chunking import Chunk
from qa.errors import IndexStateError

# Writes go through the module (`disk.write_file`), so a test can stand in for the disk.
from qa.index import files as disk
from qa.index import sentences
from qa.index.deltas import apply_keywords
from qa.index.files import utc_now
from qa.index.keywords import KeywordIndex
from qa.index.segments import COMPACT_SHARE, MAX_DELTAS, LayeredKeywords, LayeredStore, flatten
from qa.index.sentences import SentenceVectors
from qa.index.store import Index, build_study_keywords
from qa.index.vectorstore import refit
from qa.models.embedding import Embedder

#: Called with (done, total, what) while an update runs.
Progress = Callable[[int, int, str], None]


@dataclass
class RetryCache:
    """Vectors an update embedded before its save failed (a full disk), so a retry reuses them.

    Owned by whoever retries in one process (the service: its watcher and Rebuild button);
    a one-shot caller (`qa index`) needs none.
    """

    #: Passage vectors by (model, embedded text).
    passages: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    #: Sentence vectors by model, then passage text.
    sentences: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def keep(
        self, index: Index, embedder: Embedder, added: list[tuple[int, Chunk]], texts: list[str]
    ) -> None:
        """Keep the vectors of `added` and the sentence vectors of `texts` after a failed save."""
        for cid, chunk in added:
            self.passages[(embedder.name, chunk.embed_text)] = index.vectors.get([cid])[0]
        if index.sentences is not None:
            stored = index.sentences.stored
            self.sentences[embedder.name] = {t: stored[t] for t in texts if t in stored}

    def clear(self) -> None:
        """Forget everything (the save it was kept for succeeded)."""
        self.passages.clear()
        self.sentences.clear()


@dataclass(frozen=True)
class UpdateJob:
    """What one update was asked to do (the caller's arguments, passed down the steps together)."""

    folder: Path | str  # the index folder; for PostgreSQL its URL (password hidden), for messages
    embedder: Embedder
    rebuild: bool
    switch: bool
    progress: Progress | None
    retry: RetryCache
    compact: bool = False


def save_generation(index: Index, job: UpdateJob, rebuilt: bool, new_chunks: list[tuple[int, Chunk]]) -> None:
    """Write `index` as a whole new generation (keywords and sentence vectors made anew)."""
    index.vectors = flatten(index.vectors)
    ordered = sorted(index.chunks)
    index.keywords = KeywordIndex.build(ordered, [index.chunks[i].embed_text for i in ordered])
    # Whole summaries too: a study about a topic uses its words in every section, and
    # ranking studies by that as well lifts them above passing mentions.
    index.study_keywords = build_study_keywords(index)
    if rebuilt:
        index.manifest["built_at"] = utc_now()
    embedder = job.embedder
    kept = job.retry.sentences.get(embedder.name, {})
    if kept:  # sentence vectors a failed save embedded
        if index.sentences is None or index.sentences.model != embedder.name:
            index.sentences = SentenceVectors(embedder.name)
        index.sentences.keep(kept)
    # Sentence vectors for highlighting, new passages only.
    index.sentences, index.sentence_rows = sentences.refreshed(index.sentences, index.chunks, embedder)
    index.vectors = refit(index.vectors)  # exact <-> approximate when the size crossed over
    try:
        index.save()
    except IndexStateError:
        # Keep what was embedded, so the retry from this process does not embed it again.
        job.retry.keep(index, embedder, new_chunks, list(index.sentences.stored))
        raise
    job.retry.clear()


def backfill_sentences(index: Index, embedder: Embedder) -> None:
    """Add the sentence file to a live generation written before they existed (no other change)."""
    gen = index.manifest.get("base", index.manifest.get("generation"))
    if gen is None or index.sentences is None or index.sentences.stored or not index.chunks:
        return
    index.sentences, index.sentence_rows = sentences.refreshed(index.sentences, index.chunks, embedder)
    sentences.write_live(index.folder, gen, index.sentence_rows, disk.write_file)


def fits_delta(index: Index, rebuilt: bool, previous: Index | None) -> bool:
    """Whether this update can be written as a delta on the live generation (else: a whole one)."""
    vectors, keywords, studies = index.vectors, index.keywords, index.study_keywords
    if rebuilt or previous is not None or not isinstance(vectors, LayeredStore):
        return False
    if not all(isinstance(k, LayeredKeywords) and k.supports_delta for k in (keywords, studies)):
        return False  # a base written before its keyword statistics were recorded
    if len(index.manifest.get("deltas", [])) >= MAX_DELTAS:
        return False
    # What a compaction would fold in, against the base's size.
    return vectors.changed <= COMPACT_SHARE * max(1, vectors.base.ntotal)


def save_delta(
    index: Index,
    job: UpdateJob,
    removed_ids: list[int],
    removed: list[tuple[int, Chunk]],
    added: list[tuple[int, Chunk]],
) -> None:
    """Update the keyword layers and sentence vectors for what changed, then write it as a delta."""
    embedder = job.embedder
    apply_keywords(index, removed, added)
    kept = job.retry.sentences.get(embedder.name, {})
    if kept and index.sentences is not None and index.sentences.model == embedder.name:
        index.sentences.keep(kept)  # sentence vectors a failed save embedded
    if index.sentences is None or index.sentences.model != embedder.name:
        index.sentences = SentenceVectors(embedder.name)
    texts = [c.text for _, c in added]
    rows = index.sentences.add_rows(texts, embedder)
    index.changes = (removed, added)
    try:
        index.save_delta(removed_ids, added, rows)
    except IndexStateError:
        job.retry.keep(index, embedder, added, texts)  # the retry from this process embeds none of it again
        raise
    job.retry.clear()


def embed(index: Index, new_chunks: list[tuple[int, Chunk]], job: UpdateJob) -> None:
    """Add the vectors of `new_chunks`, reusing any kept from a failed save."""
    embedder, progress, kept = job.embedder, job.progress, job.retry.passages
    total, batch = len(new_chunks), 64
    # Longest first, so each batch holds passages of like length: a batch is padded to its
    # longest passage, and the model's sorting reaches only within one call. With the 317
    # summaries in file order, embedding took 75 s; sorted, see the README's build figures.
    new_chunks = sorted(new_chunks, key=lambda item: -len(item[1].embed_text))
    if progress and total:
        progress(0, total, "embedding passages")
    for start in range(0, total, batch):
        part = new_chunks[start : start + batch]
        keys = [(embedder.name, c.embed_text) for _, c in part]
        missing = [i for i, key in enumerate(keys) if key not in kept]
        fresh = embedder.encode([part[i][1].embed_text for i in missing])
        vectors = np.zeros((len(part), embedder.dimension), dtype=np.float32)
        for row, i in enumerate(missing):
            vectors[i] = fresh[row]
        for i, key in enumerate(keys):
            if key in kept:
                vectors[i] = kept[key]
        index.vectors.add([i for i, _ in part], vectors)
        index.chunks.update(part)
        if progress:
            progress(min(start + batch, total), total, "embedding passages")
