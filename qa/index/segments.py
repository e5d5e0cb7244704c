"""Segments: a base generation plus small deltas, so an update costs what changed.

A generation's files (`vectors-B.faiss`, `chunks-B.jsonl`, `keywords-B/`, `studies-B/`,
`sentences-B.npy`) are the base and are never rewritten by a small update. An update that
changes a few summaries writes only a delta (`delta-G.*`: the passages it added, their vectors
and sentence vectors, the ids it removed) and a manifest naming the base and its deltas in
order; the manifest rename stays the only switch point. Loading is the base plus its deltas:

- `LayeredStore`: the base `VectorStore`, a small exact store of added vectors, and the base
  ids removed since (left out of results; the base is over-fetched so `n` results remain).
- `LayeredKeywords`: the base `KeywordIndex` (removed rows masked out) and the added rows,
  scored with the base's statistics so their scores compare with the base's.

Both are copied on write (`fork`): an update makes new objects that share the immutable base
with the index the current searcher reads, so queries in other threads never see a half-applied
update. When the deltas grow past `COMPACT_SHARE` of the base, the update writes a whole new
generation instead (compaction) and the deltas go with the old generation.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from qa.index.keywords import KeywordIndex, has_prefix, tokenize
from qa.index.vectorstore import ExactStore, VectorStore, as_ids, as_vectors

#: Deltas are folded into a new generation when the passages they add and remove pass this
#: share of the base's passages: loading replays them (tokenising the added passages), and
#: removed rows still cost a masked slot in every base search.
COMPACT_SHARE = 0.10
#: ... or when there are this many delta files (each is a few small files to open on load).
MAX_DELTAS = 64


class LayeredStore(VectorStore):
    """A base `VectorStore` (shared, never changed) + an exact store of added vectors + removed base ids."""

    def __init__(self, base: VectorStore, delta: ExactStore | None = None, dead: Iterable[int] = ()) -> None:
        self.base = base
        self.dimension = base.dimension
        self.delta = delta if delta is not None else ExactStore(base.dimension)
        self.dead: set[int] = set(dead)  # base ids removed since the base was written
        self._delta_ids: set[int] = set(self.delta.vectors(copy=False)[0].tolist()) if delta else set()

    def fork(self) -> LayeredStore:
        """A copy whose changes the original never sees; the base is shared, the small parts copied."""
        delta = self.delta.copy()
        copy = LayeredStore(self.base, None, self.dead)
        copy.delta, copy._delta_ids = delta, set(self._delta_ids)
        return copy

    @property
    def ntotal(self) -> int:
        """Number of live vectors."""
        return self.base.ntotal - len(self.dead) + self.delta.ntotal

    @property
    def changed(self) -> int:
        """Vectors added and removed since the base: what a compaction would fold in."""
        return self.delta.ntotal + len(self.dead)

    def add(self, ids: Any, vectors: Any) -> None:
        """Store new vectors in the delta."""
        ids = as_ids(ids)
        self.delta.add(ids, as_vectors(vectors, self.dimension))
        self._delta_ids.update(ids.tolist())

    def remove(self, ids: Any) -> int:
        """Forget vectors: from the delta, or marked removed in the base (which is never changed)."""
        ids = as_ids(ids).tolist()
        mine = [i for i in ids if i in self._delta_ids]
        gone = self.delta.remove(mine)
        self._delta_ids.difference_update(mine)
        # Chunk ids are never reused, so an id not in the delta is the base's (or unknown).
        base = [i for i in ids if i not in self._delta_ids and i not in mine and i not in self.dead]
        known = self._in_base(base)
        self.dead.update(known)
        return gone + len(known)

    def _in_base(self, ids: list[int]) -> list[int]:
        found = []
        for i in ids:
            try:
                self.base.get([i])
            except KeyError:
                continue
            found.append(i)
        return found

    def search(self, vectors: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Nearest live vectors: the base over-fetched by the removed count, merged with the delta."""
        vectors = as_vectors(vectors, self.dimension)
        n = max(1, n)
        parts, drops = [], []
        dead = np.fromiter(self.dead, dtype=np.int64, count=len(self.dead))
        take = min(n + len(self.dead), self.base.ntotal)
        if take:
            scores, ids = self.base.search(vectors, take)
            parts.append((scores, ids))
            drops.append((ids < 0) | np.isin(ids, dead))  # removed from the base (maybe re-added below)
        if self.delta.ntotal:
            scores, ids = self.delta.search(vectors, min(n, self.delta.ntotal))
            parts.append((scores, ids))
            drops.append(ids < 0)
        out_scores = np.full((len(vectors), n), -np.inf, dtype=np.float32)
        out_ids = np.full((len(vectors), n), -1, dtype=np.int64)
        if not parts:
            return out_scores, out_ids
        scores = np.concatenate([s for s, _ in parts], axis=1)
        ids = np.concatenate([i for _, i in parts], axis=1)
        scores = np.where(np.concatenate(drops, axis=1), -np.inf, scores)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :n]
        top_scores = np.take_along_axis(scores, order, axis=1)
        top_ids = np.where(np.isinf(top_scores), -1, np.take_along_axis(ids, order, axis=1))
        width = top_ids.shape[1]
        out_scores[:, :width], out_ids[:, :width] = top_scores, top_ids
        return out_scores, out_ids

    def get(self, ids: Any) -> np.ndarray:
        """Stored vectors by id, from the delta or the base; KeyError for one removed or unknown."""
        ids = as_ids(ids).tolist()
        out = np.zeros((len(ids), self.dimension), np.float32)
        for row, i in enumerate(ids):
            if i in self._delta_ids:
                out[row] = self.delta.get([i])[0]
            elif i in self.dead:
                raise KeyError(i)
            else:
                out[row] = self.base.get([i])[0]
        return out

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """All live ids and vectors (base without the removed ones, then the delta)."""
        base_ids, base_vectors = self.base.vectors()
        keep = ~np.isin(base_ids, np.fromiter(self.dead, dtype=np.int64, count=len(self.dead)))
        delta_ids, delta_vectors = self.delta.vectors()
        return (
            np.concatenate([base_ids[keep], delta_ids]),
            np.concatenate([base_vectors[keep], delta_vectors]),
        )

    def describe(self) -> dict[str, Any]:
        """The base store's kind and settings (the delta is exact)."""
        return self.base.describe()

    def to_bytes(self) -> bytes:
        """One file of everything live, as a whole store of the base's kind would write it."""
        return flatten(self).to_bytes()

    def copy(self) -> LayeredStore:
        """An independent copy of both layers (as `fork`)."""
        return self.fork()


def flatten(store: VectorStore) -> VectorStore:
    """One plain store holding what `store` holds: a layered store merged into a copy of its base."""
    if not isinstance(store, LayeredStore):
        return store
    # A copy of the base (trained IVF lists cloned with their direct map, so nothing is retrained).
    merged = store.base.copy()
    merged.remove(sorted(store.dead))
    ids, vectors = store.delta.vectors()
    merged.add(ids, vectors)
    return merged


class LayeredKeywords:
    """`KeywordIndex`'s methods over a base index (removed rows masked) and rows added since.

    Added rows are scored with the base's statistics (number of rows, document frequencies read
    from bm25s's score matrix, average length) and the same BM25 variant and k1/b as bm25s, so a
    delta's scores compare with the base's and a rebuild ranks the same way give or take the
    shift in statistics. No library scores a small set of rows with another index's statistics,
    hence this small scorer by hand; it is checked against bm25s in tests/test_segments.py.
    """

    def __init__(self, base: KeywordIndex) -> None:
        self.base = base
        self.dead: set = set()  # base ids removed since the base was written
        self._rows: dict[Any, frozenset[str]] = {}  # added id -> its distinct terms
        self._postings: dict[str, dict[Any, float]] = {}  # term -> {added id: BM25 part}
        self._owned: set[str] = set()  # posting dicts this object made (others are shared)
        self._df: dict[str, int] = {}  # change to the base's document frequency per term
        self._mask: np.ndarray | None = None
        self._sorted: list[str] | None = None
        self._row_of = _row_numbers(base)

    @property
    def supports_delta(self) -> bool:
        """Whether rows can be added (the base recorded its average length; bm25s's default variant)."""
        return self.base.avgdl is not None and self.base.model.method == "lucene"

    def fork(self) -> LayeredKeywords:
        """A copy whose changes the original never sees (posting dicts are copied when first changed)."""
        copy = LayeredKeywords.__new__(LayeredKeywords)
        copy.base, copy._row_of = self.base, self._row_of
        copy.dead, copy._rows, copy._df = set(self.dead), dict(self._rows), dict(self._df)
        copy._postings, copy._owned = dict(self._postings), set()
        copy._mask, copy._sorted = None, None
        return copy

    @property
    def changed(self) -> int:
        """Rows added and removed since the base."""
        return len(self._rows) + len(self.dead)

    def _idf(self, term: str) -> float:
        # bm25s "lucene" idf: log(1 + (N - df + 0.5) / (df + 0.5)), with the base's N and df.
        n = self.base.num_rows
        df = self.base.doc_freq(term)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def _posting(self, term: str) -> dict[Any, float]:
        if term not in self._owned:
            self._postings[term] = dict(self._postings.get(term, {}))
            self._owned.add(term)
        return self._postings[term]

    def add(self, ids: list, texts: list[str]) -> None:
        """Add rows (an id already added is replaced)."""
        k1, b, avgdl = self.base.model.k1, self.base.model.b, self.base.avgdl or 1.0
        self.remove([i for i in ids if i in self._rows])
        for row_id, text in zip(ids, texts):
            tokens = tokenize(text) or [""]
            norm = k1 * (1 - b + b * len(tokens) / avgdl)
            counts = Counter(tokens)
            for term, tf in counts.items():
                # bm25s "lucene" term part: tf / (k1 * (1 - b + b * dl / avgdl) + tf)
                self._posting(term)[row_id] = self._idf(term) * tf / (norm + tf)
                self._df[term] = self._df.get(term, 0) + 1
            self._rows[row_id] = frozenset(counts)
        self._mask, self._sorted = None, None

    def remove(self, ids: Iterable, texts: Iterable[str] | None = None) -> None:
        """Remove rows by id; `texts` (the removed rows' texts, in order) keeps document frequencies exact."""
        texts = list(texts) if texts is not None else None
        for at, row_id in enumerate(ids):
            terms = self._rows.pop(row_id, None)
            if terms is not None:
                for term in terms:
                    self._posting(term).pop(row_id, None)
                    self._df[term] = self._df.get(term, 0) - 1
            elif row_id in self._row_of and row_id not in self.dead:
                self.dead.add(row_id)
                if texts is not None:
                    for term in set(tokenize(texts[at]) or [""]):
                        self._df[term] = self._df.get(term, 0) - 1
        self._mask, self._sorted = None, None

    def doc_freq(self, token: str) -> int:
        """Number of live rows that contain the (already tokenised) term."""
        return max(0, self.base.doc_freq(token) + self._df.get(token, 0))

    def knows_stem_of(self, word: str, prefix: int = 6) -> bool:
        """Whether an indexed term shares `word`'s first letters (see `KeywordIndex.knows_stem_of`)."""
        if self.base.knows_stem_of(word, prefix):
            return True
        if self._sorted is None:
            self._sorted = sorted(t for t, p in self._postings.items() if p)
        return has_prefix(self._sorted, word, prefix)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple]:
        """Top `k` (id, BM25 score): the base without removed rows, merged with the added rows;
        `allowed` (a boolean array by integer id) leaves rows out first."""
        tokens = tokenize(query)
        hits: dict = {}
        base_tokens = [t for t in tokens if t in self.base.vocab]
        if base_tokens and self.base.ids:
            if self._mask is None and self.dead:
                mask = np.ones(len(self.base.ids), dtype=np.float32)
                mask[[self._row_of[i] for i in self.dead]] = 0.0
                self._mask = mask
            weights = self._mask if self.dead else None
            if allowed is not None:
                weights = self.base.mask(allowed) * (weights if weights is not None else 1.0)
            rows, scores = self.base.model.retrieve(
                [base_tokens],
                k=min(k, len(self.base.ids)),
                show_progress=False,
                n_threads=1,
                weight_mask=weights,
            )
            hits = {self.base.ids[r]: float(s) for r, s in zip(rows[0], scores[0]) if s > 0}
        for term in tokens:  # a query term twice counts twice, as in bm25s
            for row_id, part in self._postings.get(term, {}).items():
                if allowed is None or (row_id < len(allowed) and allowed[row_id]):
                    hits[row_id] = hits.get(row_id, 0.0) + part
        ranked = sorted(hits.items(), key=lambda item: item[1], reverse=True)
        return [(i, s) for i, s in ranked[:k] if s > 0]


def _row_numbers(base: KeywordIndex) -> dict:
    return {row_id: row for row, row_id in enumerate(base.ids)}
