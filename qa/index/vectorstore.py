"""Where passage vectors live: one small interface, an exact FAISS store and an approximate one.

`choose_store(n)` picks the kind by size: exact search is simplest and perfect, but its cost
grows with every vector; past `APPROXIMATE_FROM` vectors an inverted-file (IVF) index scans a
few percent of them, at recall@10 >= 0.98 (measured by `bench/scale.py`, part B).
Another engine (Qdrant, OpenSearch, ...) is one more `VectorStore` subclass, not a rewrite.

Both stores keep inner-product scores of unit vectors (cosine similarity) and take int64 ids
chosen by the caller. Files are plain `faiss.write_index` output, so `faiss.read_index` opens
them, and every index written before this module existed opens as an `ExactStore`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa.errors import IndexStateError

#: From this many vectors on, `choose_store` picks the approximate store. Measured with
#: `bench/scale.py --part b` on the 2-core machine (shared, load average 12-14), one query:
#: exact p50 19-66 ms at 100k vectors and 141 ms at 200k (it grows with n); IVF at 100k
#: 27 ms, recall@10 0.990; at 200k 25 ms, 0.995; at 1M 22-37 ms, 0.995. With no other load,
#: exact search of 100k vectors takes ~9 ms: about 100k is where it leaves a 30 ms search budget.
APPROXIMATE_FROM = 100_000
#: Recall@10 against exact search that the IVF store tunes `nprobe` for when it is trained.
TARGET_RECALL = 0.99
#: Query batches smaller than this run on one OpenMP thread. FAISS splits one exact query
#: across threads; with the 2 cores busy (a server, a rebuild, other processes) the threads
#: wait on each other: measured 64 ms -> 9 ms p50 for one query over 100k vectors at load 4.
#: (FAISS itself switches to BLAS, which is threaded differently, from 20 queries.)
SINGLE_THREAD_BELOW = 20
#: Below this many points per list FAISS's k-means warns and the lists are poor.
_MIN_POINTS_PER_LIST = 39


@contextmanager
def _query_threads(n_queries: int) -> Iterator[None]:
    """One OpenMP thread for a few queries; the setting is per calling thread, restored after."""
    if n_queries >= SINGLE_THREAD_BELOW:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def as_ids(ids: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


def as_vectors(vectors: Any, dimension: int) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != dimension:
        raise ValueError(f"vectors must have shape (n, {dimension}), got {array.shape}")
    return array


class VectorStore(ABC):
    """Vectors by id: add, remove, nearest by inner product, save and load as one file.

    Engine-neutral: nothing here names the engine. `FaissStore` below is the FAISS family
    (exact and IVF); `qa.index.segments.LayeredStore` layers a delta on any store. Every
    implementation runs the same contract test (tests/test_vectorstore.py).
    """

    dimension: int

    @property
    @abstractmethod
    def ntotal(self) -> int:
        """Number of vectors stored."""

    @abstractmethod
    def add(self, ids: Any, vectors: Any) -> None:
        """Store `vectors` (n, dimension) under `ids` (n,); ids must not be stored already."""

    @abstractmethod
    def remove(self, ids: Any) -> int:
        """Forget the vectors with these ids (unknown ids are ignored); return how many went."""

    @abstractmethod
    def search(self, vectors: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (queries, n), best first; missing places have id -1."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The kind and settings, for the index manifest (what changes results is recorded)."""

    @abstractmethod
    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything stored, to move it into another store without re-embedding."""

    @abstractmethod
    def get(self, ids: Any) -> np.ndarray:
        """The stored vectors of `ids`, (n, dimension); KeyError for an id not stored."""

    @abstractmethod
    def copy(self) -> VectorStore:
        """An independent store holding the same vectors (nothing re-embedded or retrained)."""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """The file `save` writes, as bytes (for callers that write files themselves)."""

    def save(self, path: Path) -> None:
        """Write the store to `path`, readable by `load_store`."""
        path.write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: Path) -> VectorStore:
        """Open a store saved by `save`."""
        return load_store(path)

    def _check_new_ids(self, ids: np.ndarray, count: int) -> None:
        if len(ids) != count:
            raise ValueError(f"{len(ids)} ids for {count} vectors")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids must be unique")


class FaissStore(VectorStore):
    """The FAISS family: a store with a `faiss.Index` underneath, written as FAISS writes it."""

    @property
    @abstractmethod
    def faiss_index(self) -> faiss.Index:
        """The FAISS index underneath (written as is by `save`)."""

    def get(self, ids: Any) -> np.ndarray:
        """The stored vectors of `ids`, (n, dimension); KeyError for an id not stored."""
        out = np.zeros((len(as_ids(ids)), self.dimension), np.float32)
        for row, i in enumerate(as_ids(ids).tolist()):
            try:
                out[row] = self.faiss_index.reconstruct(i)
            except RuntimeError:
                raise KeyError(i) from None
        return out

    def copy(self) -> VectorStore:
        """An independent store holding the same vectors (nothing re-embedded or retrained)."""
        twin = type(self)(self.dimension, faiss.clone_index(self.faiss_index))
        return twin

    def to_bytes(self) -> bytes:
        """The file `save` writes, as bytes (for callers that write files themselves)."""
        return faiss.serialize_index(self.faiss_index).tobytes()

    def save(self, path: Path) -> None:
        """Write the store to `path`, readable by `faiss.read_index` and `load_store`."""
        faiss.write_index(self.faiss_index, str(path))


class ExactStore(FaissStore):
    """Every vector compared with the query: FAISS IndexIDMap2(IndexFlatIP), as qa/index/store.py has used."""

    kind = "faiss-flat"

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        self.dimension = dimension
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    @property
    def ntotal(self) -> int:
        """Number of vectors stored."""
        return int(self._index.ntotal)

    @property
    def faiss_index(self) -> faiss.Index:
        """The IndexIDMap2 underneath."""
        return self._index

    def add(self, ids: Any, vectors: Any) -> None:
        """Store vectors under caller-chosen ids."""
        vectors = as_vectors(vectors, self.dimension)
        ids = as_ids(ids)
        self._check_new_ids(ids, len(vectors))
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: Any) -> int:
        """Forget vectors by id; return how many were removed."""
        ids = as_ids(ids)
        return int(self._index.remove_ids(ids)) if len(ids) else 0

    def search(self, vectors: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact nearest vectors by inner product."""
        vectors = as_vectors(vectors, self.dimension)
        with _query_threads(len(vectors)):
            return self._index.search(vectors, max(1, n))

    def vectors(self, copy: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """All ids and their vectors; `copy=False` gives a view valid until the store changes."""
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if not len(ids):
            return ids, np.zeros((0, self.dimension), np.float32)
        flat = faiss.downcast_index(self._index.index)
        # A view of FAISS's own array: a second copy of 1M vectors is 1.5 GB.
        view = faiss.rev_swig_ptr(flat.get_xb(), len(ids) * self.dimension).reshape(len(ids), self.dimension)
        return ids, view.copy() if copy else view

    def describe(self) -> dict[str, Any]:
        """Kind and settings."""
        return {"kind": self.kind, "metric": "inner_product", "dimension": self.dimension}


def nlist_for(n_vectors: int) -> int:
    """Number of IVF lists for `n_vectors`: about 2*sqrt(n), a power of two, each list >= 39 points.

    The usual FAISS guidance is 4-16*sqrt(n) for speed at very large n; fewer, larger lists keep
    recall high at a small nprobe and train faster on 2 cores, and at 1M vectors a query still
    scans only a few percent of them (see bench/scale.py part B).
    """
    target = 2 * math.sqrt(max(1, n_vectors))
    nlist = 2 ** max(0, round(math.log2(target)))
    while nlist > 1 and n_vectors < nlist * _MIN_POINTS_PER_LIST:
        nlist //= 2
    return nlist


class IVFStore(FaissStore):
    """Approximate: FAISS IndexIVFFlat (inner product), `nprobe` of `nlist` lists scanned per query.

    IVF, unlike FAISS's HNSW, removes ids in place (a hash-table direct map makes removal and
    reconstruction work for any ids), so an update costs what changed. Until it has enough
    vectors to train its lists (`train_size`), it keeps them in an exact store, so adding in
    small batches works; it trains on everything it has then, and tunes `nprobe` to reach
    `TARGET_RECALL` on a sample of its own vectors.
    """

    kind = "faiss-ivf-flat"

    def __init__(
        self,
        dimension: int,
        nlist: int,
        nprobe: int | None = None,
        index: faiss.Index | None = None,
        trained_on: int = 0,
    ) -> None:
        self.dimension = dimension
        self.nlist = nlist
        self.trained_on = trained_on
        self._fixed_nprobe = nprobe
        self._staging: ExactStore | None = None
        if index is None:
            self._staging = ExactStore(dimension)
            index = faiss.IndexIVFFlat(
                faiss.IndexFlatIP(dimension), dimension, nlist, faiss.METRIC_INNER_PRODUCT
            )
            index.cp.spherical = True  # unit vectors: centroids on the sphere too
        self._index = index
        if nprobe is not None:
            self._index.nprobe = nprobe

    @property
    def train_size(self) -> int:
        """Vectors needed before the lists are trained."""
        return self.nlist * _MIN_POINTS_PER_LIST

    @property
    def trained(self) -> bool:
        """Whether the lists are trained (otherwise vectors sit in an exact staging store)."""
        return self._staging is None

    @property
    def nprobe(self) -> int:
        """Lists scanned per query."""
        return int(self._index.nprobe)

    @property
    def ntotal(self) -> int:
        """Number of vectors stored."""
        return self._staging.ntotal if self._staging is not None else int(self._index.ntotal)

    @property
    def faiss_index(self) -> faiss.Index:
        """The IndexIVFFlat, or the exact staging index while untrained."""
        return self._staging.faiss_index if self._staging is not None else self._index

    def add(self, ids: Any, vectors: Any) -> None:
        """Store vectors; trains the lists once `train_size` vectors have arrived."""
        vectors = as_vectors(vectors, self.dimension)
        ids = as_ids(ids)
        self._check_new_ids(ids, len(vectors))
        if not len(ids):
            return
        if self._staging is not None:
            self._staging.add(ids, vectors)
            if self._staging.ntotal >= self.train_size:
                self._train()
            return
        self._index.add_with_ids(vectors, ids)

    def _train(self) -> None:
        assert self._staging is not None
        ids, vectors = self._staging.vectors(copy=False)  # the staging store goes right after
        self._index.train(vectors)
        # A hash-table direct map: remove_ids and reconstruct for arbitrary ids.
        self._index.set_direct_map_type(faiss.DirectMap.Hashtable)
        self._index.add_with_ids(vectors, ids)
        self.trained_on = len(ids)
        if self._fixed_nprobe is None:
            self._index.nprobe = self._tune_nprobe(self._staging, vectors)
        self._staging = None

    def _tune_nprobe(self, exact: ExactStore, vectors: np.ndarray, queries: int = 200, k: int = 10) -> int:
        """Smallest nprobe (powers of two) whose recall@k against exact reaches TARGET_RECALL.

        Queries are stored vectors; their own id is left out of both lists, so what is measured
        is finding the neighbours, not finding itself.
        """
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(len(vectors), size=min(queries, len(vectors)), replace=False)]
        _, truth = exact.search(sample, k + 1)
        truth = truth[:, 1:]  # the first is the query itself
        nprobe = 1
        while nprobe < self.nlist:
            self._index.nprobe = nprobe
            _, found = self._index.search(sample, k + 1)
            if recall_at(found[:, 1:], truth) >= TARGET_RECALL:
                return nprobe
            nprobe *= 2
        return self.nlist

    def remove(self, ids: Any) -> int:
        """Forget vectors by id in place; return how many were removed."""
        ids = as_ids(ids)
        if not len(ids):
            return 0
        if self._staging is not None:
            return self._staging.remove(ids)
        # The hash-table direct map only accepts an IDSelectorArray.
        return int(self._index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids))))

    def search(self, vectors: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximate nearest vectors by inner product (exact while untrained)."""
        if self._staging is not None:
            return self._staging.search(vectors, n)
        vectors = as_vectors(vectors, self.dimension)
        with _query_threads(len(vectors)):
            return self._index.search(vectors, max(1, n))

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """All ids and their vectors (IVF-Flat keeps the vectors uncompressed)."""
        if self._staging is not None:
            return self._staging.vectors()
        invlists = self._index.invlists
        ids = [
            faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
            for i in range(self.nlist)
            if invlists.list_size(i)
        ]
        ids = np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64)
        if not len(ids):
            return ids, np.zeros((0, self.dimension), np.float32)
        return ids, self._index.reconstruct_batch(ids)

    def describe(self) -> dict[str, Any]:
        """Kind and settings: lists, lists scanned, vectors trained on."""
        return {
            "kind": self.kind,
            "metric": "inner_product",
            "dimension": self.dimension,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "trained": self.trained,
            "trained_on": self.trained_on,
        }

    def copy(self) -> VectorStore:
        """An independent copy: trained lists cloned as they are, an untrained store refilled."""
        if self.trained:
            return IVFStore(
                self.dimension,
                self.nlist,
                self.nprobe,
                index=faiss.clone_index(self._index),
                trained_on=self.trained_on,
            )
        twin = IVFStore(self.dimension, self.nlist)
        ids, vectors = self.vectors()
        twin.add(ids, vectors)
        return twin


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of `truth` (true neighbour ids) present in the same row of `found`."""
    if not len(truth):
        return 1.0
    hits = [
        len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist())) / max(1, int((t >= 0).sum()))
        for f, t in zip(found, truth)
    ]
    return float(np.mean(hits))


def choose_store(n_vectors: int, dimension: int) -> VectorStore:
    """The store for about `n_vectors` vectors: exact below `APPROXIMATE_FROM`, IVF from there."""
    if n_vectors < APPROXIMATE_FROM:
        return ExactStore(dimension)
    return IVFStore(dimension, nlist_for(n_vectors))


def refit(store: VectorStore) -> VectorStore:
    """`store`, or a new store of the kind its size now calls for, holding the same vectors.

    An exact store that has grown past `APPROXIMATE_FROM`, an IVF store that has shrunk below
    half of it, or one holding over four times what its lists were trained on, is rebuilt from
    its own vectors (no re-embedding). Call it after an update, before saving.
    """
    n = store.ntotal
    if isinstance(store, ExactStore):
        stale = n >= APPROXIMATE_FROM
    elif isinstance(store, IVFStore):
        stale = n < APPROXIMATE_FROM // 2 or (store.trained and n > 4 * max(1, store.trained_on))
    else:
        return store
    if not stale:
        return store
    fresh = choose_store(n, store.dimension)
    ids, vectors = store.vectors()
    fresh.add(ids, vectors)
    return fresh


def load_store(path: Path, settings: dict[str, Any] | None = None) -> VectorStore:
    """Open a store file; `settings` (from `describe()` in the manifest) keeps an untrained IVF store's plan.

    Raises `IndexStateError` naming the file when it is missing or not a FAISS index we know.
    """
    try:
        # read_index returns the concrete class; keep that object, it owns the C++ index.
        index = faiss.read_index(str(path))
    except (RuntimeError, OSError) as exc:
        raise IndexStateError(f"{path}: cannot read the vector file ({str(exc).splitlines()[0]})") from None
    if isinstance(index, faiss.IndexIVFFlat):
        nlist = int(index.nlist)
        store = IVFStore(index.d, nlist, int(index.nprobe), index=index)
        store.trained_on = int((settings or {}).get("trained_on", index.ntotal))
        return store
    if isinstance(index, faiss.IndexIDMap2) and isinstance(
        faiss.downcast_index(index.index), faiss.IndexFlat
    ):
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexStateError(f"{path}: vectors use another metric than inner product")
        if (settings or {}).get("kind") == IVFStore.kind:  # an IVF store not trained yet
            store = IVFStore(index.d, int(settings["nlist"]))
            store._staging = ExactStore(index.d, index)
            return store
        return ExactStore(index.d, index)
    raise IndexStateError(f"{path}: unsupported vector index type {type(index).__name__}")
