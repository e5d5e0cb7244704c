"""Segments: base + deltas give what a full rebuild gives, crash-safe, compacted past their share."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import qa.index.files
import qa.index.writing
from qa.index.files import MANIFEST
from qa.index.keywords import KeywordIndex
from qa.index.segments import LayeredKeywords, LayeredStore, flatten
from qa.index.store import Index, follow_index
from qa.index.update import update_folder
from qa.index.vectorstore import ExactStore, IVFStore
from qa.search.pipeline import Searcher
from qa.search.stages import DenseRetriever
from qa.search.types import SearchSettings
from qa.search.vocabulary import Vocabulary
from tests.conftest import CORPUS

TEXTS = [
    "Low-dose naltrexone reduced fatigue in ME/CFS patients over twelve weeks.",
    "Exercise worsened symptoms: post-exertional malaise after cycling tests.",
    "IL-6 and other cytokines were raised in long COVID compared with controls.",
    "Naltrexone at low doses was well tolerated; fatigue scores fell.",
    "Orthostatic intolerance and POTS were common after infection.",
]


# --- the pieces, alone ------------------------------------------------------------------


def test_added_rows_score_as_bm25s_scores_them_with_the_same_statistics():
    base = KeywordIndex.build(list(range(len(TEXTS))), TEXTS)
    layered = LayeredKeywords(base)
    layered.add(["copy"], [TEXTS[3]])  # scored with the base's N, df and average length
    for query in ("naltrexone fatigue", "fatigue fatigue low", "well tolerated doses"):
        expected = dict(base.search(query, len(TEXTS)))
        got = dict(layered.search(query, len(TEXTS) + 1))
        assert got["copy"] == pytest.approx(expected[3], rel=1e-5), query


def test_removed_rows_never_come_back_and_doc_freq_follows():
    base = KeywordIndex.build(list(range(len(TEXTS))), TEXTS)
    layered = LayeredKeywords(base)
    original = layered.fork()
    layered.remove([0, 3], [TEXTS[0], TEXTS[3]])
    assert [i for i, _ in layered.search("naltrexone", 10)] == []
    assert layered.doc_freq("naltrexon") == 0 and base.doc_freq("naltrexon") == 2
    layered.add([7], ["Naltrexone trial, a new one"])
    assert [i for i, _ in layered.search("naltrexone", 10)] == [7]
    assert layered.doc_freq("naltrexon") == 1 and layered.knows_stem_of("naltrexones")
    # The fork made before is untouched (another thread may be searching it).
    assert {i for i, _ in original.search("naltrexone", 10)} == {0, 3}


def test_layered_store_searches_like_one_store_of_the_live_vectors():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((200, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    base = ExactStore(16)
    base.add(np.arange(150), vectors[:150])
    layered = LayeredStore(base)
    before = layered.fork()
    layered.remove(np.arange(0, 150, 3))
    layered.add(np.arange(150, 200), vectors[150:])
    layered.remove([160, 999])  # one from the delta, one unknown
    live = [i for i in range(200) if (i >= 150 or i % 3) and i != 160]
    truth = ExactStore(16)
    truth.add(live, vectors[live])
    queries = rng.standard_normal((5, 16)).astype(np.float32)
    assert layered.ntotal == truth.ntotal == len(live)
    np.testing.assert_array_equal(layered.search(queries, 10)[1], truth.search(queries, 10)[1])
    merged = flatten(layered)
    np.testing.assert_array_equal(merged.search(queries, 10)[1], truth.search(queries, 10)[1])
    assert before.ntotal == 150 and base.ntotal == 150  # the base and earlier forks never change


def test_an_approximate_base_is_compacted_without_retraining():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    base = IVFStore(16, 8)
    base.add(np.arange(2500), vectors[:2500])
    layered = LayeredStore(base)
    layered.remove(np.arange(100))
    layered.add(np.arange(2500, 3000), vectors[2500:])
    merged = flatten(layered)
    assert isinstance(merged, IVFStore) and merged.trained_on == 2500 and merged.ntotal == 2900
    with pytest.raises(KeyError):
        merged.get([5])
    queries = vectors[2600:2605]
    np.testing.assert_array_equal(merged.search(queries, 5)[1], layered.search(queries, 5)[1])


# --- the index on disk, with the real model ---------------------------------------------


@pytest.fixture
def small_docs(tmp_path: Path) -> Path:
    """Seven short corpus summaries."""
    docs = tmp_path / "docs"
    docs.mkdir()
    files = sorted(CORPUS.glob("*.md"), key=lambda p: p.stat().st_size)[40:47]
    for path in files:
        shutil.copy(path, docs / path.name)
    return docs


def live_generations(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")}


def _key(index: Index, cid: int) -> tuple:
    chunk = index.chunks[cid]
    return chunk.doc_id, chunk.section, chunk.part


QUESTIONS = ["fatigue after exercise", "immune markers in blood", "sleep problems", "treatment trial results"]


def _results(index: Index, embedder) -> dict:
    """What the searcher finds per question, in terms that do not depend on chunk ids."""
    searcher = Searcher(index, embedder, SearchSettings(rerank="none"))
    dense = DenseRetriever(index, embedder)
    out = {}
    for q in QUESTIONS:
        out[q] = (
            [_key(index, cid) for cid, _ in dense.retrieve(q, 8)],
            [s.doc_id for s in searcher.search(q, k=3).studies],
        )
    return out


def test_a_delta_update_reloads_to_what_a_full_rebuild_gives(small_docs, tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(qa.index.writing, "COMPACT_SHARE", 1.0)  # a small folder: keep every update a delta
    folder = tmp_path / "idx"
    first, _ = update_folder(folder, small_docs, embedder)
    base_files = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name.startswith("vectors-")}
    edited, removed = sorted(small_docs.glob("*.md"))[:2]
    old_words = "quizzically zebrafish"
    (small_docs / "zz-new.md").write_text(
        (CORPUS / sorted(p.name for p in CORPUS.glob("*.md"))[0]).read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    edited.write_text(
        edited.read_text(encoding="utf-8") + f"\nA closing line on {old_words}.\n", encoding="utf-8"
    )
    middle, _ = update_folder(folder, small_docs, embedder, current=first)
    edited.write_text(edited.read_text(encoding="utf-8").replace(old_words, "tenapanor"), encoding="utf-8")
    removed.unlink()
    updated, report = update_folder(folder, small_docs, embedder, current=middle)
    assert report.changed == [edited.name] and report.removed == [removed.name]

    manifest = json.loads((folder / MANIFEST).read_text())
    assert len(manifest["deltas"]) == 2 and manifest["base"] == first.manifest["generation"]
    assert {
        p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name.startswith("vectors-")
    } == base_files

    rebuilt_folder = tmp_path / "rebuilt"
    rebuilt, _ = update_folder(rebuilt_folder, small_docs, embedder)
    reloaded = Index.load(folder)
    for index in (updated, reloaded):
        assert set(index.documents) == set(rebuilt.documents)
        assert sorted(c.text for c in index.chunks.values()) == sorted(
            c.text for c in rebuilt.chunks.values()
        )
        assert index.vectors.ntotal == len(index.chunks)
        assert _results(index, embedder) == _results(rebuilt, embedder)
        # Removed and replaced passages never come back from the base.
        assert all(c.doc_id != removed.name for c in index.chunks.values())
        assert not index.keywords.search("quizzically zebrafish", 10)
        assert removed.name not in {d for d, _ in index.study_keywords.search("the", 100)}
        text = next(c.text for c in index.chunks_of(removed.name)) if index.chunks_of(removed.name) else ""
        assert text == ""
        assert [d for d, _ in index.study_keywords.search("tenapanor", 5)] == [edited.name]
        sentences = index.sentences.get(next(c.text for c in index.chunks_of("zz-new.md")))
        assert sentences is not None and len(sentences) >= 1


def test_a_crash_between_the_delta_and_the_manifest_leaves_the_previous_index(
    small_docs, tmp_path, embedder, monkeypatch
):
    monkeypatch.setattr(qa.index.writing, "COMPACT_SHARE", 1.0)
    folder = tmp_path / "idx"
    first, _ = update_folder(folder, small_docs, embedder)
    before = live_generations(folder)
    edited = sorted(small_docs.glob("*.md"))[0]
    edited.write_text(edited.read_text(encoding="utf-8") + "\nA line about tenapanor.\n", encoding="utf-8")

    def killed(*args, **kwargs):  # what kill -9 leaves: delta files written, manifest not switched
        raise SystemExit("killed")

    with monkeypatch.context() as patch:
        patch.setattr(qa.index.files, "write_manifest", killed)
        with pytest.raises(SystemExit):
            update_folder(folder, small_docs, embedder, current=first)
    assert any(name.startswith("delta-") for name in live_generations(folder) - before)
    reopened = Index.load(folder)
    assert reopened.manifest["generation"] == first.manifest["generation"]
    assert not reopened.keywords.search("tenapanor", 5)

    index, report = update_folder(folder, small_docs, embedder)  # the next writer cleans up
    assert report.changed == [edited.name]
    manifest = json.loads((folder / MANIFEST).read_text())
    deltas = {f"delta-{g}" for g in manifest["deltas"]}
    assert {n.split(".")[0] for n in live_generations(folder) if n.startswith("delta-")} == deltas
    assert [d for d, _ in Index.load(folder).study_keywords.search("tenapanor", 3)] == [edited.name]


def test_deltas_are_compacted_past_their_share_or_count(small_docs, tmp_path, embedder, monkeypatch):
    folder = tmp_path / "idx"
    first, _ = update_folder(folder, small_docs, embedder)
    edited = sorted(small_docs.glob("*.md"))[0]
    original = edited.read_text(encoding="utf-8")
    # One summary of seven is well past 10 % of the passages: a whole new generation.
    edited.write_text(original + "\nOne more line.\n", encoding="utf-8")
    index, _ = update_folder(folder, small_docs, embedder, current=first)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["deltas"] == [] and manifest["base"] == manifest["generation"]

    monkeypatch.setattr(qa.index.writing, "COMPACT_SHARE", 1.0)
    monkeypatch.setattr(qa.index.writing, "MAX_DELTAS", 2)
    for n in range(3):
        edited.write_text(original + f"\nLine number {n}.\n", encoding="utf-8")
        index, _ = update_folder(folder, small_docs, embedder, current=index)
        manifest = json.loads((folder / MANIFEST).read_text())
        assert len(manifest["deltas"]) == [1, 2, 0][n]
    # The compacted generation holds everything; the previous one (and its deltas) stays for readers.
    assert Index.load(folder).vectors.ntotal == len(index.chunks)
    kept = {int(n.split("-")[1].split(".")[0]) for n in live_generations(folder) if n[0] != "m"}
    assert kept == {manifest["generation"], *manifest["previous_files"]}

    edited.write_text(original, encoding="utf-8")
    index, _ = update_folder(folder, small_docs, embedder, current=index)
    assert len(json.loads((folder / MANIFEST).read_text())["deltas"]) == 1
    index, _ = update_folder(folder, small_docs, embedder, current=index, compact=True)  # asked for
    assert json.loads((folder / MANIFEST).read_text())["deltas"] == []
    assert sorted(c.text for c in Index.load(folder).chunks.values()) == sorted(
        c.text for c in index.chunks.values()
    )


def test_a_reader_follows_only_the_new_deltas(small_docs, tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(qa.index.writing, "COMPACT_SHARE", 1.0)
    folder = tmp_path / "idx"
    writer, _ = update_folder(folder, small_docs, embedder)
    reader = Index.load(folder)
    edited = sorted(small_docs.glob("*.md"))[0]
    edited.write_text(edited.read_text(encoding="utf-8") + "\nA line about tenapanor.\n", encoding="utf-8")
    update_folder(folder, small_docs, embedder, current=writer)
    followed = follow_index(folder, reader)
    assert followed.parent is reader and followed.manifest == Index.load(folder).manifest
    removed, added = followed.changes
    assert {c.doc_id for _, c in removed} == {c.doc_id for _, c in added} == {edited.name}
    assert [d for d, _ in followed.study_keywords.search("tenapanor", 3)] == [edited.name]
    assert not reader.keywords.search("tenapanor", 3)  # the reader's index is untouched
    assert _results(followed, embedder) == _results(Index.load(folder), embedder)


def test_the_vocabulary_follows_an_update_without_relearning():
    gone = "Cognitive problems, fog and fatigue."
    vocabulary = Vocabulary.from_texts(["Low-dose naltrexone (LDN) helped fatigue.", gone])
    updated = vocabulary.updated(
        removed=[gone], added=["Tenapanor eased irritable bowel syndrome (IBS) pain."]
    )
    assert updated.knows("tenapanor") and not updated.knows("fog") and vocabulary.knows("fog")
    assert updated.acronyms == {"LDN": "low-dose naltrexone", "IBS": "irritable bowel syndrome"}
    assert updated.correct("tenapanr") == "tenapanor" and updated.correct("fatige") == "fatigue"
    assert vocabulary.correct("cognitve") == "cognitive"
    assert updated.correct("cognitve") == "cognitve"  # "cognitive" is gone with its summary


def test_the_service_follows_a_delta_without_relearning(small_docs, tmp_path, embedder, monkeypatch):
    from qa.models.multilingual import chosen_texts
    from qa.serve.service import Service

    monkeypatch.setattr(qa.index.writing, "COMPACT_SHARE", 1.0)
    service = Service(small_docs, tmp_path / "idx", embedder, settings=SearchSettings(rerank="none"))
    service.rebuild()
    old = service.searcher
    old_ids = set(old.retrievers["multilingual"].retriever.ids)
    edited = sorted(small_docs.glob("*.md"))[0]
    edited.write_text(edited.read_text(encoding="utf-8") + "\nA line about tenapanor.\n", encoding="utf-8")

    def relearn(*args, **kwargs):
        raise AssertionError("the vocabulary was learned again from every passage")

    monkeypatch.setattr(Vocabulary, "from_texts", relearn)
    report = service.rebuild()
    assert report.changed == [edited.name] and service.searcher is not old
    assert service.searcher.vocabulary.knows("tenapanor") and not old.vocabulary.knows("tenapanor")
    stage = service.searcher.retrievers["multilingual"].retriever
    assert stage.ids == set(chosen_texts(service.searcher.index.chunks)) != old_ids
    assert set(old.retrievers["multilingual"].retriever.ids) == old_ids  # the old searcher is untouched
    assert service.ask("tenapanor").studies[0].doc_id == edited.name


def test_edits_then_compaction_search_exactly_as_a_fresh_build(small_docs, tmp_path, embedder, monkeypatch):
    """Issue 20, point 9: after many one-summary edits, compacted = rebuilt, scores and words alike."""
    from qa.serve.service import Service

    monkeypatch.setattr(qa.index.writing, "COMPACT_SHARE", 100.0)  # every edit a delta until asked
    service = Service(small_docs, tmp_path / "idx", embedder, settings=SearchSettings(rerank="none"))
    service.rebuild()
    files = sorted(small_docs.glob("*.md"))
    for n, path in enumerate(files[:4] * 2):  # eight edits, each followed as a delta
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text + f"\nChronic fatigue syndrome (CFS) note {n}: sleep and immune markers.\n", "utf-8"
        )
        service.rebuild()
    files[5].unlink()
    service.rebuild()
    assert len(json.loads((tmp_path / "idx" / MANIFEST).read_text())["deltas"]) == 9
    service.rebuild(compact=True)
    compacted = service.searcher.index
    assert json.loads((tmp_path / "idx" / MANIFEST).read_text())["deltas"] == []
    fresh, _ = update_folder(tmp_path / "fresh", small_docs, embedder)

    def scored(index: Index) -> dict:
        keywords = {
            q: [(_key(index, c), round(s, 5)) for c, s in index.keywords.search(q, 10)] for q in QUESTIONS
        }
        return {"keywords": keywords, "results": _results(index, embedder)}

    assert scored(compacted) == scored(Index.load(tmp_path / "idx")) == scored(fresh)
    rebuilt_words = Searcher(fresh, embedder, SearchSettings(rerank="none")).vocabulary
    assert service.searcher.vocabulary.acronyms == rebuilt_words.acronyms
    assert service.searcher.vocabulary.words == rebuilt_words.words
