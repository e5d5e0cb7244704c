"""Updates that cost what changed: unchanged files judged by size and mtime, only edits embedded."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from qa.corpus.documents import load_folder
from qa.index.files import MANIFEST
from qa.index.store import Index
from qa.index.update import update_folder, update_index
from tests.conftest import CORPUS

pytestmark = pytest.mark.slow

#: An mtime well in the past, so the update trusts it (a just-written file is hashed again).
PAST_NS = 1_700_000_000 * 10**9


def _age(folder: Path) -> None:
    for i, path in enumerate(sorted(folder.glob("*.md"))):
        os.utime(path, ns=(PAST_NS + i, PAST_NS + i))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """Three short corpus summaries with old modification times."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for source in sorted(CORPUS.glob("*.md"), key=lambda p: p.stat().st_size)[:3]:
        shutil.copy(source, folder / source.name)
    _age(folder)
    return folder


def test_no_change_and_touch_read_and_embed_nothing(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    first, report = update_folder(folder, docs, embedder)
    assert len(report.added) == 3 and report.files_read == 3
    entry = next(iter(first.documents.values()))
    assert {"size", "mtime_ns", "hash"} <= set(entry)

    _, report = update_folder(folder, docs, embedder)
    assert report.files_read == 0 and report.embedded_chunks == 0 and report.unchanged == 3
    generation = json.loads((folder / MANIFEST).read_text())["generation"]

    touched = sorted(docs.glob("*.md"))[0]
    os.utime(touched, ns=(PAST_NS + 99, PAST_NS + 99))  # a new mtime, the same bytes
    _, report = update_folder(folder, docs, embedder)
    assert report.files_read == 1 and report.embedded_chunks == 0 and not report.touched
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["generation"] == generation  # no new generation for a touch
    assert manifest["documents"][touched.name]["mtime_ns"] == PAST_NS + 99  # stat refreshed

    _, report = update_folder(folder, docs, embedder)
    assert report.files_read == 0 and report.embedded_chunks == 0


def test_edit_embeds_only_that_file_and_delete_removes(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    first, _ = update_folder(folder, docs, embedder)
    edited, gone, kept = sorted(docs.glob("*.md"))
    kept_chunks = list(first.documents[kept.name]["chunks"])
    edited.write_text(edited.read_text(encoding="utf-8") + "\nA new closing sentence.\n", encoding="utf-8")
    index, report = update_folder(folder, docs, embedder)
    assert report.changed == [edited.name] and report.files_read == 1
    assert report.embedded_chunks == len(index.documents[edited.name]["chunks"])
    assert index.documents[kept.name]["chunks"] == kept_chunks
    assert any("A new closing sentence." in c.text for c in index.chunks_of(edited.name))

    gone.unlink()
    index, report = update_folder(folder, docs, embedder)
    assert report.removed == [gone.name] and report.embedded_chunks == 0
    reopened = Index.load(folder)
    assert gone.name not in reopened.documents
    assert reopened.vectors.ntotal == len(reopened.chunks)


def test_an_index_without_stats_opens_and_updates(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    update_folder(folder, docs, embedder)
    manifest = json.loads((folder / MANIFEST).read_text())
    for entry in manifest["documents"].values():  # as written before stats were recorded
        del entry["size"], entry["mtime_ns"]
    manifest.pop("vector_store")
    (folder / MANIFEST).write_text(json.dumps(manifest))

    index, report = update_folder(folder, docs, embedder)
    assert report.files_read == 3 and report.embedded_chunks == 0 and report.unchanged == 3
    assert all("mtime_ns" in e for e in index.documents.values())
    _, report = update_folder(folder, docs, embedder)
    assert report.files_read == 0


def test_unchanged_files_are_parsed_when_the_index_is_rebuilt(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    update_folder(folder, docs, embedder)
    known = json.loads((folder / MANIFEST).read_text())["documents"]
    loaded = load_folder(docs, known=known)
    assert not loaded.documents and len(loaded.unchanged) == 3 and loaded.read == 0
    index, report = update_index(folder, loaded, embedder, rebuild=True)
    assert len(report.added) == 3 and len(index.chunks) == report.embedded_chunks > 0


def test_the_store_is_recorded_and_reopened(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    index, _ = update_folder(folder, docs, embedder)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["vector_store"]["kind"] == "faiss-flat"
    assert manifest["vector_store"]["dimension"] == embedder.dimension
    reopened = Index.load(folder)
    assert reopened.vectors.ntotal == index.vectors.ntotal == len(index.chunks)
    vector = embedder.encode_query("fatigue after exercise")
    _, ids = reopened.vectors.search(vector.reshape(1, -1), 3)
    assert set(ids[0].tolist()) <= set(reopened.chunks)


def test_no_change_keeps_the_loaded_index_and_a_change_loads_anew(docs, tmp_path, embedder):
    folder = tmp_path / "idx"
    first, _ = update_folder(folder, docs, embedder)
    same, report = update_folder(folder, docs, embedder, current=first)
    assert same is first and report.files_read == 0 and not report.touched
    edited = sorted(docs.glob("*.md"))[0]
    edited.write_text(edited.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    fresh, report = update_folder(folder, docs, embedder, current=first)
    assert fresh is not first and report.changed == [edited.name]
    assert fresh.manifest["generation"] > first.manifest["generation"]


def test_an_edit_whose_mtime_was_put_back_is_still_indexed(tmp_path, fake_embedder):
    """`touch -r`, restoring a copy and some sync tools put the old mtime back on an edited file."""
    from tests.conftest import write_summary

    docs, folder = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    path = write_summary(docs, "a.md", "Pacing study", "Pacing helped most patients.")
    write_summary(docs, "b.md", "Sleep study", "Sleep improved with time.")
    hour_ago = (path.stat().st_mtime_ns - 3_600_000_000_000,) * 2
    for p in docs.iterdir():
        os.utime(p, ns=hour_ago)
    update_folder(folder, docs, fake_embedder)
    assert "size" in json.loads((folder / MANIFEST).read_text())["documents"]["a.md"], "stat recorded"

    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("helped most", "harmed some"), encoding="utf-8")  # same size
    os.utime(path, ns=hour_ago)  # mtime put back: size and mtime are as recorded
    index, report = update_folder(folder, docs, fake_embedder)
    assert report.changed == ["a.md"]
    assert any("harmed some" in c.text for c in index.chunks_of("a.md"))


# --- editors' files (issue "Readers that never write…", point 6) ---------------------------


def test_editor_temporary_and_hidden_files_are_not_summaries(tmp_path):
    from qa.corpus.documents import summary_files

    for name in ("real.md", "tmpk3j9x_2q.md", ".#real.md", ".real.md", "real.md~", "real.md.swp", "x.tmp"):
        (tmp_path / name).write_text("---\ntitle: T\n---\n\n## Summary\n\nText.\n", encoding="utf-8")
    assert [p.name for p in summary_files(tmp_path)] == ["real.md"]
    assert list(load_folder(tmp_path).documents)[0].doc_id == "real.md"


def test_the_watcher_reads_a_file_only_once_its_writer_has_finished(tmp_path, fake_embedder):
    import threading
    import time

    from qa.search.types import SearchSettings
    from qa.serve.service import Service
    from tests.conftest import write_summary

    docs = tmp_path / "docs"
    docs.mkdir()
    write_summary(docs, "a.md", "Pacing", "Pacing helped.")
    service = Service(
        docs, tmp_path / "idx", fake_embedder, settings=SearchSettings(rerank="none", multilingual=False)
    )
    service.rebuild()
    sections = [
        f"## Part {n}\n\n" + f"Finding number {n} of the slow summary. " * 30 + "\n\n" for n in range(7)
    ]
    seen: set[int] = set()
    stop = threading.Event()
    thread = service.watch(stop)

    def write_slowly() -> None:  # an editor or a copy writing in steps, 0.3 s apart
        with (docs / "slow.md").open("w", encoding="utf-8") as f:
            f.write("---\ntitle: A slowly written summary\n---\n\n")
            for part in sections:
                f.write(part)
                f.flush()
                time.sleep(0.3)

    try:
        time.sleep(0.5)  # let the watcher start
        writer = threading.Thread(target=write_slowly)
        writer.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (writer.is_alive() or 7 not in seen):
            chunks = service.searcher.index.chunks_of("slow.md")
            if chunks:
                seen.add(len({c.section for c in chunks}))
            time.sleep(0.01)
        writer.join()
    finally:
        stop.set()
        thread.join(timeout=10)
    assert seen == {7}, "every version served has all seven sections"


def test_a_reader_loads_another_processs_update_without_waiting_for_a_question(tmp_path, fake_embedder):
    import threading
    import time

    from qa.search.types import SearchSettings
    from qa.serve.service import Service
    from tests.conftest import write_summary

    docs = tmp_path / "docs"
    docs.mkdir()
    write_summary(docs, "a.md", "Pacing", "Pacing helped.")
    settings = SearchSettings(rerank="none", multilingual=False)
    writer = Service(docs, tmp_path / "idx", fake_embedder, settings=settings)
    writer.rebuild()
    reader = Service(docs, tmp_path / "idx", fake_embedder, settings=settings, writes=False)
    reader.open()
    stop = threading.Event()
    reader.follow_in_background(stop, every=0.1)
    try:
        write_summary(docs, "b.md", "Tilt", "Blood flow fell.")
        writer.rebuild()
        deadline = time.monotonic() + 10
        while "b.md" not in reader.searcher.index.documents and time.monotonic() < deadline:
            time.sleep(0.05)  # no question is asked meanwhile
    finally:
        stop.set()
    assert set(reader.searcher.index.documents) == {"a.md", "b.md"}


def test_a_build_embeds_each_passage_once(tmp_path, fake_embedder, monkeypatch):
    from collections import Counter

    from tests.conftest import write_summary

    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(12):
        write_summary(docs, f"s{n}.md", f"Study {n}", f"Finding {n} about pacing and sleep. " * 40)
    seen: Counter = Counter()
    encode = fake_embedder.encode

    def counting(texts, **kw):
        seen.update(texts)
        return encode(texts, **kw)

    monkeypatch.setattr(fake_embedder, "encode", counting)
    index, report = update_folder(tmp_path / "index", docs, fake_embedder)
    passages = [c.embed_text for c in index.chunks.values()]
    assert len(passages) == report.embedded_chunks > 12
    assert [seen[text] for text in passages] == [1] * len(passages)
