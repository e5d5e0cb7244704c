"""One contract for every vector store (like txtai's testdense.py), plus choosing and refitting."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from qa.errors import IndexStateError
from qa.index.segments import LayeredStore
from qa.index.vectorstore import (
    APPROXIMATE_FROM,
    ExactStore,
    IVFStore,
    VectorStore,
    choose_store,
    load_store,
    nlist_for,
    recall_at,
    refit,
)

DIM = 16


def unit(n: int, seed: int = 0) -> np.ndarray:
    """`n` random unit vectors of DIM dimensions."""
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact() -> VectorStore:
    return ExactStore(DIM)


def ivf_staging() -> VectorStore:
    return IVFStore(DIM, nlist=64)  # 64*39 vectors needed: 300 stay in the exact staging store


def ivf_trained() -> VectorStore:
    store = IVFStore(DIM, nlist=4)  # 156 vectors train it: the 300 below are in IVF lists
    return store


def layered() -> VectorStore:
    return LayeredStore(ExactStore(DIM))  # the store an update's delta layers on a base


BACKENDS = [exact, ivf_staging, ivf_trained, layered]


@pytest.fixture(params=BACKENDS, ids=lambda f: f.__name__)
def store(request) -> VectorStore:
    """An empty store of each kind, filled with 300 vectors under ids 1000, 1002, ..."""
    made = request.param()
    ids, vectors = np.arange(300) * 2 + 1000, unit(300)
    if isinstance(made, LayeredStore):  # half in the base, half in the delta: both layers answer
        made.base.add(ids[:150], vectors[:150])
        made.add(ids[150:], vectors[150:])
    else:
        made.add(ids, vectors)
    return made


def test_add_and_search_finds_each_vector_first(store):
    data = unit(300)
    scores, ids = store.search(data[:20], 5)
    assert store.ntotal == 300
    assert ids.shape == scores.shape == (20, 5)
    assert ids[:, 0].tolist() == (np.arange(20) * 2 + 1000).tolist()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_remove_forgets_ids_and_ignores_unknown(store):
    gone = np.arange(10) * 2 + 1000
    assert store.remove(np.concatenate([gone, [5, 7]])) == 10
    assert store.ntotal == 290
    _, ids = store.search(unit(300)[:10], 3)
    assert not set(ids.ravel().tolist()) & set(gone.tolist())
    assert store.remove([]) == 0


def test_readd_after_remove_and_duplicates_rejected(store):
    store.remove([1000])
    store.add([1000], unit(1, seed=9))
    _, ids = store.search(unit(1, seed=9), 1)
    assert ids[0, 0] == 1000
    with pytest.raises(ValueError, match="unique"):
        store.add([1, 1], unit(2))
    with pytest.raises(ValueError, match="shape"):
        store.add([1], np.zeros((1, DIM + 1), np.float32))


def test_more_asked_than_stored_pads_with_minus_one(store):
    _, ids = store.search(unit(1), 400)
    assert (ids[0, :300] >= 0).sum() >= 250  # IVF scans only some lists: may find fewer
    assert (ids[0, 300:] == -1).all()


def test_save_load_round_trip_gives_same_results(store, tmp_path):
    path = tmp_path / "vectors.faiss"
    store.save(path)
    assert faiss.read_index(str(path)).ntotal == 300  # plain FAISS can read it
    again = load_store(path, store.describe())
    saved_as = store.base if isinstance(store, LayeredStore) else store  # saved as one store
    assert type(again) is type(saved_as)
    assert again.describe() == store.describe()
    queries = unit(30, seed=3)
    assert np.array_equal(again.search(queries, 10)[1], store.search(queries, 10)[1])


def test_get_and_bytes(store, tmp_path):
    assert np.allclose(store.get([1004, 1000]), unit(300)[[2, 0]], atol=1e-6)
    with pytest.raises(KeyError):
        store.get([1001])
    path = tmp_path / "from-bytes.faiss"
    path.write_bytes(store.to_bytes())
    assert load_store(path, store.describe()).ntotal == 300


def test_vectors_round_trip_into_another_store(store):
    ids, vectors = store.vectors()
    assert sorted(ids.tolist()) == (np.arange(300) * 2 + 1000).tolist()
    order = np.argsort(ids)
    assert np.allclose(vectors[order], unit(300), atol=1e-6)


def test_describe_names_kind_and_settings(store):
    described = store.describe()
    assert described["kind"] in ("faiss-flat", "faiss-ivf-flat")
    assert described["dimension"] == DIM
    if isinstance(store, IVFStore):
        assert described["nlist"] == store.nlist and described["trained"] == store.trained


def test_ivf_trains_when_enough_vectors_arrive_in_small_batches():
    store = IVFStore(DIM, nlist=4)
    data = unit(400, seed=1)
    for start in range(0, 400, 64):  # like index.py: batches of 64
        store.add(np.arange(start, min(start + 64, 400)), data[start : start + 64])
        assert store.trained == (store.ntotal >= store.train_size)
    assert store.trained and store.trained_on == 192  # trained at the third batch
    assert 1 <= store.nprobe <= 4
    _, truth = ExactStore(DIM).search(data[:1], 1)  # empty exact store: nothing found
    assert truth[0, 0] == -1


def test_ivf_reaches_target_recall_on_clustered_vectors():
    rng = np.random.default_rng(5)
    centres = unit(50, seed=6)
    data = centres[rng.integers(0, 50, 4000)] + 0.3 * unit(4000, seed=7)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    ivf, flat = IVFStore(DIM, nlist=nlist_for(4000)), ExactStore(DIM)
    for s in (ivf, flat):
        s.add(np.arange(4000), data)
    queries = centres[rng.integers(0, 50, 100)] + 0.3 * unit(100, seed=8)  # new points, same topics
    recall = recall_at(ivf.search(queries, 10)[1], flat.search(queries, 10)[1])
    assert ivf.trained and ivf.nprobe < ivf.nlist
    assert recall >= 0.95


def test_choose_store_by_size():
    assert isinstance(choose_store(APPROXIMATE_FROM - 1, DIM), ExactStore)
    big = choose_store(APPROXIMATE_FROM, DIM)
    assert isinstance(big, IVFStore) and big.nlist == nlist_for(APPROXIMATE_FROM)
    assert nlist_for(1_000_000) == 2048
    assert nlist_for(100) == 2  # each list keeps >= 39 points


def test_refit_moves_vectors_without_reembedding(monkeypatch):
    monkeypatch.setattr("qa.index.vectorstore.APPROXIMATE_FROM", 200)
    small = ExactStore(DIM)
    small.add(np.arange(150), unit(150))
    assert refit(small) is small
    small.add(np.arange(150, 400), unit(250, seed=2))
    grown = refit(small)
    assert isinstance(grown, IVFStore) and grown.ntotal == 400 and grown.trained
    ids, _ = grown.vectors()
    assert sorted(ids.tolist()) == list(range(400))
    grown.remove(np.arange(350))
    assert isinstance(refit(grown), ExactStore)


def test_old_index_file_opens_as_exact(tmp_path):
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))  # what qa/index/store.py has always written
    old.add_with_ids(unit(5), np.arange(5, dtype=np.int64))
    faiss.write_index(old, str(tmp_path / "vectors-3.faiss"))
    store = load_store(tmp_path / "vectors-3.faiss")
    assert isinstance(store, ExactStore) and store.ntotal == 5
    assert store.search(unit(5)[2:3], 1)[1][0, 0] == 2


def test_bad_files_are_named_in_the_error(tmp_path):
    junk = tmp_path / "vectors-1.faiss"
    junk.write_bytes(b"not a faiss index")
    with pytest.raises(IndexStateError, match="vectors-1.faiss"):
        load_store(junk)
    with pytest.raises(IndexStateError, match="missing.faiss"):
        load_store(tmp_path / "missing.faiss")
    l2 = tmp_path / "l2.faiss"
    faiss.write_index(faiss.IndexIDMap2(faiss.IndexFlatL2(DIM)), str(l2))
    with pytest.raises(IndexStateError, match="l2.faiss.*metric"):
        load_store(l2)


def test_a_copy_is_independent_and_answers_the_same(store):
    twin = store.copy()
    query = unit(5, seed=3)
    assert (twin.search(query, 5)[1] == store.search(query, 5)[1]).all()
    assert twin.describe() == store.describe()
    twin.remove([1000])
    assert twin.ntotal == store.ntotal - 1 and 1000 in store.search(unit(300)[:1], 1)[1][0]
