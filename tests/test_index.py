"""The index on disk: round trip, incremental updates, bad files, damage and model mismatch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qa.corpus.chunking import chunk_document
from qa.corpus.documents import load_folder
from qa.errors import IndexStateError
from qa.index.folder import resolve_docs
from qa.index.store import Index, open_index
from qa.index.update import update_index
from tests.conftest import CORPUS, SEEDS

PICK = [
    "2024-01-06_Advancing_Research_and_Treatment",
    "2025-09-23_Relationships_Between_Fatigue",
    "2022-11-11_Prednisolone_and_Vitamin",
]

pytestmark = pytest.mark.slow


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A small folder: the seed plus two odd corpus files."""
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(next(SEEDS.glob("*.md")), folder / "seed.md")
    for prefix in PICK[1:]:
        source = next(CORPUS.glob(prefix + "*"))
        shutil.copy(source, folder / source.name)
    return folder


def test_build_and_load_round_trip(docs, tmp_path, embedder):
    index, report = update_index(tmp_path / "idx", load_folder(docs), embedder)
    assert len(report.added) == 3 and report.unchanged == 0
    loaded = open_index(tmp_path / "idx", embedder)
    assert loaded.vectors.ntotal == len(loaded.chunks) == report.embedded_chunks > 3
    assert set(loaded.documents) == set(index.documents)
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["model"] == embedder.name and manifest["dimension"] == 384
    for entry in manifest["documents"].values():
        assert len(entry["hash"]) == 64 and entry["chunks"]
    seed_chunks = loaded.chunks_of("seed.md")
    assert [c.section for c in seed_chunks][:2] == ["Summary", "What was researched?"]
    assert seed_chunks[0].citation.label == "Seton et al. (2024)"


def test_incremental_update_embeds_only_what_changed(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    first, _ = update_index(folder, load_folder(docs), embedder)
    before = {d: list(e["chunks"]) for d, e in first.documents.items()}

    again, report = update_index(folder, load_folder(docs), embedder)
    assert report.embedded_chunks == 0 and report.unchanged == 3 and not report.touched

    seed = docs / "seed.md"
    seed.write_text(
        seed.read_text(encoding="utf-8") + "\nAn added closing line about tenapanor.\n", encoding="utf-8"
    )
    edited, report = update_index(folder, load_folder(docs), embedder)
    assert report.changed == ["seed.md"] and report.unchanged == 2
    assert report.embedded_chunks == len(edited.chunks_of("seed.md"))
    for doc_id in before:
        if doc_id != "seed.md":
            assert edited.documents[doc_id]["chunks"] == before[doc_id]
    assert "tenapanor" in " ".join(c.text for c in edited.chunks_of("seed.md"))

    removed_id = next(d for d in before if d.startswith("2022-11-11"))
    (docs / removed_id).unlink()
    pruned, report = update_index(folder, load_folder(docs), embedder)
    assert report.removed == [removed_id] and report.embedded_chunks == 0
    assert removed_id not in pruned.documents
    assert all(c.doc_id != removed_id for c in pruned.chunks.values())
    reloaded = Index.load(folder)
    assert reloaded.vectors.ntotal == len(reloaded.chunks)
    assert all(hit.chunk.doc_id != removed_id for hit in _search(reloaded, embedder, "prednisolone trial"))
    # Old generations are cleaned up: the live one and the one before remain.
    assert len(list(folder.glob("vectors-*.faiss"))) == 2


def _search(index, embedder, question):
    from qa.search.pipeline import Searcher

    return Searcher(index, embedder).passages(question)


def test_bad_files_are_skipped_and_the_rest_indexed(docs, tmp_path, embedder):
    (docs / "empty.md").write_text("")
    (docs / "broken.md").write_text('---\ntitle: "unclosed\ntags: [\n---\n\n## Summary\n\nText.\n')
    (docs / "binary.md").write_bytes(b"\x00\x01\x02---")
    loaded = load_folder(docs)
    assert {p.path.name for p in loaded.problems} == {"empty.md", "broken.md", "binary.md"}
    index, report = update_index(tmp_path / "idx", loaded, embedder)
    assert len(report.added) == 3 and len(index.documents) == 3


def test_a_file_that_breaks_keeps_its_indexed_passages(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    first, _ = update_index(folder, load_folder(docs), embedder)
    count = len(first.chunks_of("seed.md"))
    (docs / "seed.md").write_text("---\ntitle: [broken\n---\n")
    index, report = update_index(folder, load_folder(docs), embedder)
    assert report.kept_broken == ["seed.md"] and not report.removed
    assert len(index.chunks_of("seed.md")) == count


def test_damaged_or_missing_index_says_how_to_rebuild(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    with pytest.raises(IndexStateError, match="qa index"):
        Index.load(folder)
    update_index(folder, load_folder(docs), embedder)
    next(folder.glob("vectors-*.faiss")).write_bytes(b"garbage")
    with pytest.raises(IndexStateError, match="damaged.*--rebuild"):
        Index.load(folder)
    # An update repairs it by rebuilding from the summaries.
    index, report = update_index(folder, load_folder(docs), embedder)
    assert report.rebuilt_reason and len(index.documents) == 3
    assert Index.load(folder).vectors.ntotal == len(index.chunks)


def test_model_mismatch_is_reported(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    update_index(folder, load_folder(docs), embedder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["model"] = "some-other-model"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexStateError, match="some-other-model.*--rebuild"):
        open_index(folder, embedder)


def test_chunks_fit_the_model_window(embedder):
    docs = load_folder(CORPUS, sorted(CORPUS.glob("*.md"))[:60]).documents
    for doc in docs:
        for chunk in chunk_document(doc, embedder.max_tokens, embedder.count_tokens):
            assert embedder.count_tokens(chunk.embed_text) <= embedder.max_tokens, chunk.chunk_id


def test_a_rebuild_keeps_files_that_are_broken_now(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    first, _ = update_index(folder, load_folder(docs), embedder)
    texts = [c.text for c in first.chunks_of("seed.md")]
    (docs / "seed.md").write_text("---\ntitle: [broken\n---\n")
    index, report = update_index(folder, load_folder(docs), embedder, rebuild=True)
    assert report.kept_broken == ["seed.md"]
    assert [c.text for c in index.chunks_of("seed.md")] == texts
    assert Index.load(folder).vectors.ntotal == len(index.chunks)


def test_a_rebuild_never_overwrites_the_live_generation(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    update_index(folder, load_folder(docs), embedder)
    live = json.loads((folder / "manifest.json").read_text())["generation"]
    update_index(folder, load_folder(docs), embedder, rebuild=True)
    assert json.loads((folder / "manifest.json").read_text())["generation"] > live


def test_an_index_path_that_is_a_file_is_a_clear_error(docs, tmp_path, embedder):
    path = tmp_path / "not-a-folder"
    path.write_text("x")
    with pytest.raises(IndexStateError, match="is a file"):
        Index.load(path)
    with pytest.raises(IndexStateError, match="is a file"):
        update_index(path, load_folder(docs), embedder)


def test_an_empty_folder_never_empties_the_index(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    update_index(folder, load_folder(docs), embedder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IndexStateError, match="no summaries were found"):
        update_index(folder, load_folder(empty), embedder)
    assert len(Index.load(folder).documents) == 3


def test_the_index_records_its_folder_and_refuses_another(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    assert resolve_docs(folder, None, default=Path("seeds")) == Path("seeds")  # no index yet
    update_index(folder, load_folder(docs), embedder)
    assert json.loads((folder / "manifest.json").read_text())["docs"] == str(docs.resolve())
    assert resolve_docs(folder, None, default=Path("seeds")) == docs.resolve()
    assert resolve_docs(folder, docs) == docs

    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(docs / "seed.md", other / "seed.md")
    for refused in (
        lambda: resolve_docs(folder, other),
        lambda: update_index(folder, load_folder(other), embedder),
    ):
        with pytest.raises(IndexStateError) as info:
            refused()
        message = str(info.value)
        assert str(docs.resolve()) in message and str(other.resolve()) in message, message
        assert "remove 2 of its 3 summaries" in message and "--switch-docs" in message, message
    assert len(Index.load(folder).documents) == 3

    assert resolve_docs(folder, other, switch=True) == other
    index, report = update_index(folder, load_folder(other), embedder, switch_docs=True)
    assert set(index.documents) == {"seed.md"} and len(report.removed) == 2
    assert json.loads((folder / "manifest.json").read_text())["docs"] == str(other.resolve())


def test_an_index_without_a_recorded_folder_records_it_on_the_next_update(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    update_index(folder, load_folder(docs), embedder)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["docs"]  # as written before the folder was recorded
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert resolve_docs(folder, None, default=Path("seeds")) == Path("seeds")
    _, report = update_index(folder, load_folder(docs), embedder)
    assert not report.touched
    assert json.loads((folder / "manifest.json").read_text())["docs"] == str(docs.resolve())


def test_removing_more_than_half_of_the_summaries_needs_switch_docs(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    update_index(folder, load_folder(docs), embedder)
    gone = [p for p in docs.iterdir() if p.name != "seed.md"]
    for path in gone:
        path.unlink()
    with pytest.raises(IndexStateError, match=r"remove 2 of the 3 summaries.*--switch-docs"):
        update_index(folder, load_folder(docs), embedder)
    assert len(Index.load(folder).documents) == 3
    index, report = update_index(folder, load_folder(docs), embedder, switch_docs=True)
    assert sorted(report.removed) == sorted(p.name for p in gone) and set(index.documents) == {"seed.md"}


def test_the_room_to_free_is_said_in_kilobytes_when_under_a_megabyte():
    from qa.index.files import size_text

    assert [size_text(n) for n in (1, 256_000, 999_999, 1_000_001, 3_200_000)] == [
        "1 KB",
        "256 KB",
        "1000 KB",
        "2 MB",
        "4 MB",
    ]
