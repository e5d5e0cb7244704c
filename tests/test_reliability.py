"""Reliability: a hostile summaries folder, kill -9 mid-rebuild, a full disk, a busy watched server.

Every case of issue 9 is made here from small real files; the real pipeline (the `qa` command,
the bundled model, FAISS on disk, a `qa serve --watch` process) indexes them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import pytest

from qa.corpus.documents import load_document, load_folder, safe_text
from qa.errors import DocumentError, IndexStateError
from qa.index.files import MANIFEST
from qa.index.store import open_index
from qa.index.update import RetryCache, update_index
from qa.search.pipeline import Searcher
from qa.serve.cli import main
from tests.conftest import CORPUS, ROOT, SEEDS, free_port

pytestmark = pytest.mark.slow

GOOD_CORPUS = sorted(CORPUS.glob("*.md"))[:6]
MORE_CORPUS = sorted(CORPUS.glob("*.md"))[6:10]

# A file name that is not UTF-8 (Latin-1 "é"): Linux allows it, Python holds it as a surrogate.
LATIN1_NAME = os.fsdecode(b"caf\xe9-zebrafish.md")
ZEBRAFISH = (
    '---\ntitle: "Zebrafish torpor as a model of post-exertional malaise"\ntags:\n- \U0001f9ea Biomarker\n'
    "created: '2025-01-02'\npublished: '2025-01-02'\n---\n\n"
    "## Summary\n\nResearchers studied zebrafish torpor to model post-exertional malaise.\n\n"
    "## What has been found?\n\nZebrafish torpor lasted longer after forced swimming.\n"
)


def _summary(title: str, body: str, extra: str = "") -> str:
    return f"---\ntitle: \"{title}\"\n{extra}created: '2024-05-06'\n---\n\n{body}"


def _alias_bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "---\n" + "\n".join(lines) + "\ntitle: *i\n---\n\n## Summary\n\nText.\n"


#: Bad files: name -> (content, what the warning must say).
BAD: dict[str, tuple[bytes, str]] = {
    "alias-bomb.md": (_alias_bomb().encode(), r"alias"),
    "impossible-date.md": (
        _summary("Date", "## Summary\n\nText.\n").replace("'2024-05-06'", "2024-02-30").encode(),
        r"2024-02-30.*not a real date",
    ),
    "ten-mb.md": (
        _summary("Big", "## Summary\n\n" + "word " * 2_000_000).encode(),
        r"10,000,0\d\d bytes.*limit",
    ),
    "long-line.md": (_summary("Line", "## Summary\n\n" + "x" * 300_000 + "\n").encode(), r"line.*limit"),
    "many-passages.md": (
        _summary("Parts", "".join(f"## Part {i}\n\nShort text {i}.\n\n" for i in range(320))).encode(),
        r"320 passages.*limit.*300",
    ),
    "no-frontmatter.md": (b"# Just a heading\n\nSome text.\n", r"frontmatter"),
    "empty.md": (b"", r"empty"),
    "binary.md": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", r"binary|NUL"),
    "latin1.md": (_summary("Jos\u00e9", "## Summary\n\nCaf\u00e9.\n").encode("latin-1"), r"not UTF-8"),
    "nul-bytes.md": (_summary("Nul", "## Summary\n\nText\x00here.\n").encode(), r"NUL"),
    "deep-yaml.md": (
        _summary("Deep", "## Summary\n\nText.\n", "x: " + "[" * 60 + "]" * 60 + "\n").encode(),
        r"nested",
    ),
    "python-object.md": (
        _summary("Obj", "## Summary\n\nText.\n", "x: !!python/object/apply:os.system ['true']\n").encode(),
        r"unsupported YAML tag",
    ),
    "folder.md": (b"", r"is a folder"),
    "outside-link.md": (b"", r"outside the summaries folder"),
}

#: Odd files that are fine and must be indexed.
GOOD_ODD: dict[str, str] = {
    "no-details.md": _summary("A study with no details block", "## Summary\n\nProse about fatigue only.\n"),
    "script-tags.md": _summary("Script", "## Summary\n\n<script>alert(1)</script> Orthostatic text.\n"),
    LATIN1_NAME: ZEBRAFISH,
}


def make_bad_corpus(folder: Path, outside: Path) -> set[str]:
    """Fill `folder` with good corpus files, odd good files and every bad case; return good doc ids."""
    folder.mkdir()
    good = set()
    for path in GOOD_CORPUS:
        shutil.copy(path, folder / path.name)
        good.add(path.name)
    shutil.copy(next(SEEDS.glob("*.md")), folder / "seed-mojibake.md")
    # The same study under another name: both indexed, grouped as one study by DOI at search time.
    (folder / "duplicate-doi.md").write_bytes(
        GOOD_CORPUS[0].read_bytes().replace(b"## Summary", b"## Summary\n\nCopy.", 1)
    )
    good |= {"seed-mojibake.md", "duplicate-doi.md"}
    for name, text in GOOD_ODD.items():
        (folder / name).write_text(text, encoding="utf-8")
        good.add(safe_text(name))
    for name, (data, _) in BAD.items():
        if name == "folder.md":
            (folder / name).mkdir()
        elif name == "outside-link.md":
            outside.write_text(ZEBRAFISH.replace("Zebrafish", "Secret"), encoding="utf-8")
            (folder / name).symlink_to(outside)
        else:
            (folder / name).write_bytes(data)
    return good


def test_every_bad_file_is_refused_in_milliseconds(tmp_path):
    docs = tmp_path / "docs"
    make_bad_corpus(docs, tmp_path / "secret.md")
    for name, (_, pattern) in BAD.items():
        if name == "many-passages.md":
            continue  # counted at chunking, see the next test
        start = time.perf_counter()
        with pytest.raises(DocumentError, match=pattern):
            load_document(docs / name, docs)
        assert time.perf_counter() - start < 0.5, name


def test_bad_input_corpus_indexes_every_good_file_and_names_every_bad_one(tmp_path, embedder, capsys):
    docs, index = tmp_path / "docs", tmp_path / "idx"
    good = make_bad_corpus(docs, tmp_path / "secret.md")
    start = time.perf_counter()
    assert main(["index", "--docs", str(docs), "--index", str(index), "--quiet"]) == 0
    took = time.perf_counter() - start
    err = capsys.readouterr().err
    lines = err.splitlines()
    for name, (_, pattern) in BAD.items():
        said = [line for line in lines if name in line]
        assert said and re.search(pattern, said[0]), (name, said)
    loaded = open_index(index, embedder)
    assert set(loaded.documents) == good
    assert took < 60, took  # a bad file never stalls a run (the alias bomb took > 300 s)
    # The non-UTF-8 name is stored printable and round-trips through JSON.
    name = safe_text(LATIN1_NAME)
    assert name == "caf\\xe9-zebrafish.md" and json.dumps(name).isascii()
    hits = Searcher(loaded, embedder).search("zebrafish torpor", k=1)
    assert hits.studies[0].doc_id == name
    assert "Secret" not in (index / MANIFEST).read_text() + (index / "chunks-1.jsonl").read_text()


def _answers(index: Path, embedder) -> list[list[str]]:
    searcher = Searcher(open_index(index, embedder), embedder)
    questions = ["fatigue after exertion", "immune markers in blood", "treatment trial results"]
    return [[s.doc_id for s in searcher.search(q, k=5).studies] for q in questions]


def _indexed_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of the good corpus files and its index, built with `qa index`."""
    docs, index = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    for path in GOOD_CORPUS:
        shutil.copy(path, docs / path.name)
    assert main(["index", "--docs", str(docs), "--index", str(index), "--quiet"]) == 0
    return docs, index


def _generations(folder: Path) -> set[int]:
    return {int(m.group(1)) for p in folder.iterdir() if (m := re.match(r"^\w+-(\d+)", p.name))}


def test_kill_9_during_a_rebuild_keeps_the_old_answers_and_the_next_run_cleans_up(tmp_path, embedder):
    docs, index = _indexed_folder(tmp_path)
    before = _answers(index, embedder)
    for path in MORE_CORPUS:
        shutil.copy(path, docs / path.name)

    log = (tmp_path / "rebuild.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa.serve.cli", "index", "--rebuild", "--index", str(index)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while "embedding passages" not in (tmp_path / "rebuild.log").read_text() and time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / "rebuild.log").read_text()
        time.sleep(0.05)
    assert proc.poll() is None, "the rebuild ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _answers(index, embedder) == before

    # What a kill during the save itself leaves: a generation that never went live and a
    # half-written manifest temp file.
    live = json.loads((index / MANIFEST).read_text())["generation"]
    orphan = live + 5
    for path in list(index.iterdir()):
        if re.match(rf"^\w+-{live}\b", path.name):
            target = index / path.name.replace(f"-{live}", f"-{orphan}")
            (shutil.copytree if path.is_dir() else shutil.copy)(path, target)
    (index / ".manifest-crash.tmp").write_text('{"generation": ')
    (index / ".multilingual-crash.tmp").write_bytes(b"half a faiss file")

    assert main(["index", "--index", str(index), "--quiet"]) == 0
    manifest = json.loads((index / MANIFEST).read_text())
    assert not list(index.glob(".manifest-*.tmp")) and not list(index.glob(".multilingual-*.tmp"))
    assert manifest["previous_generation"] == live  # the previous *live* one is kept
    assert _generations(index) == {manifest["generation"], live}
    assert len(open_index(index, embedder).documents) == len(GOOD_CORPUS) + len(MORE_CORPUS)
    modes = {p.name: p.stat().st_mode & 0o777 for p in index.iterdir() if p.is_file()}
    assert len(set(modes.values())) == 1, modes  # the manifest was 0600 beside 0644 files


def _mount_tmpfs(folder: Path, size_kb: int, remount: bool = False) -> bool:
    options = f"{'remount,' if remount else ''}size={size_kb}k"
    args = (
        ["mount", "-o", options, str(folder)]
        if remount
        else ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]
    )
    return subprocess.run(args, capture_output=True).returncode == 0


def test_a_full_disk_is_rolled_back_named_and_the_retry_embeds_nothing_again(tmp_path, embedder, monkeypatch):
    docs, disk = tmp_path / "docs", tmp_path / "disk"
    docs.mkdir()
    disk.mkdir()
    index = disk / "idx"
    for path in GOOD_CORPUS[:3]:
        shutil.copy(path, docs / path.name)
    real = _mount_tmpfs(disk, 4096)  # a real small disk where we may mount, else an injected ENOSPC
    try:
        update_index(index, load_folder(docs), embedder)
        used_kb = shutil.disk_usage(disk).used // 1024
        files_before = sorted(p.name for p in index.iterdir())
        for path in MORE_CORPUS:
            shutil.copy(path, docs / path.name)
        if real:
            assert _mount_tmpfs(disk, used_kb + 40, remount=True)
        else:
            import errno

            import qa.index.files

            def full(path: Path, data: bytes) -> None:
                path.write_bytes(data[: len(data) // 2])  # a partial file, as a full disk leaves
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(qa.index.files, "write_file", full)
        encoded: list[int] = []
        encode = embedder.encode
        monkeypatch.setattr(
            embedder, "encode", lambda texts, **kw: encoded.append(len(texts)) or encode(texts, **kw)
        )

        retry = RetryCache()  # what the service keeps between its tries
        with pytest.raises(
            IndexStateError, match=r"^the disk is full: free \d+ [KM]B in " + re.escape(str(index.resolve()))
        ):
            update_index(index, load_folder(docs), embedder, retry=retry)
        assert sum(encoded) > 0
        assert sorted(p.name for p in index.iterdir()) == files_before  # partial files removed
        assert len(open_index(index, embedder).documents) == 3  # the previous index still answers

        encoded.clear()
        if real:
            assert _mount_tmpfs(disk, 8192, remount=True)
        else:
            monkeypatch.undo()
            monkeypatch.setattr(
                embedder, "encode", lambda texts, **kw: encoded.append(len(texts)) or encode(texts, **kw)
            )
        _, report = update_index(index, load_folder(docs), embedder, retry=retry)
        assert len(report.added) == len(MORE_CORPUS) and sum(encoded) == 0  # nothing embedded twice
        assert len(open_index(index, embedder).documents) == 3 + len(MORE_CORPUS)
    finally:
        if real:
            subprocess.run(["umount", str(disk)], capture_output=True)


def _serve(tmp_path: Path, args: list[str]) -> tuple[subprocess.Popen, int]:
    """`qa serve ARGS` on a free port, its output in tmp_path/serve.log."""
    port = free_port()
    log = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "qa.serve.cli", "serve", *args, "--port", str(port)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return server, port


def _client(server: subprocess.Popen, port: int, tmp_path: Path):  # noqa: ANN202
    """A gradio_client of the server, once it answers (the test fails if the server dies first)."""
    from gradio_client import Client

    client = None
    deadline = time.monotonic() + 120
    while client is None and time.monotonic() < deadline:
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
        with suppress(Exception):
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        time.sleep(0.5)
    assert client is not None, (tmp_path / "serve.log").read_text()
    return client


def test_watched_server_keeps_answering_while_bad_files_land(tmp_path, embedder):
    from gradio_client import Client

    docs, index = _indexed_folder(tmp_path)
    # No --docs: the server follows the folder the index records (issue 12).
    server, port = _serve(tmp_path, ["--watch", "--index", str(index)])
    try:
        client = _client(server, port, tmp_path)
        assert f"{len(GOOD_CORPUS)} summaries" in (tmp_path / "serve.log").read_text()

        errors: list[str] = []
        latencies: list[float] = []
        stop = threading.Event()

        def ask_in_a_loop(n: int) -> None:
            own = Client(f"http://127.0.0.1:{port}/", verbose=False)
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    own.predict(["fatigue", "immune cells", "exercise"][n % 3], api_name="/ask")
                    latencies.append(time.perf_counter() - start)
                except Exception as exc:  # noqa: BLE001  counted, then asserted empty
                    errors.append(repr(exc))

        threads = [threading.Thread(target=ask_in_a_loop, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        for name in ("alias-bomb.md", "impossible-date.md", "ten-mb.md"):
            (docs / name).write_bytes(BAD[name][0])
        # A UTF-8 name here: watchfiles cannot report a change to a non-UTF-8 name (the CLI test covers those).
        (docs / "zebrafish.md").write_text(ZEBRAFISH, encoding="utf-8")

        found = ""
        deadline = time.monotonic() + 90
        while not found and time.monotonic() < deadline:
            time.sleep(1)
            studies = client.predict("zebrafish torpor", api_name="/ask")["studies"]
            found = next((s["doc_id"] for s in studies if "zebrafish" in s["doc_id"]), "")
        stop.set()
        for thread in threads:
            thread.join()
        assert found == "zebrafish.md", (tmp_path / "serve.log").read_text()[-3000:]
        assert errors == []
        assert latencies and max(latencies) < 15, max(latencies)
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- readers never write into the index folder (issue "Readers that never write…", point 1) ----


def _read_only(folder: Path):  # noqa: ANN202
    """Make `folder` read-only for this process: a read-only bind mount where we may mount (root
    ignores permission bits), else its permission bits. Returns the undo."""
    if os.geteuid() == 0:
        bound = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
        if bound.returncode != 0:
            pytest.skip("root without mount: a read-only folder cannot be made here")
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True).returncode:
            subprocess.run(["umount", str(folder)], capture_output=True)
            pytest.skip("a read-only bind mount is not allowed here")
        return lambda: subprocess.run(["umount", str(folder)], capture_output=True)
    mode = folder.stat().st_mode
    folder.chmod(0o555)
    return lambda: folder.chmod(mode)


def test_readers_answer_from_a_read_only_index_folder_and_write_nothing_there(tmp_path):

    _, index = _indexed_folder(tmp_path)
    before = sorted(p.name for p in index.iterdir())
    undo = _read_only(index)
    server = None
    try:
        with pytest.raises(OSError):
            (index / "probe").write_text("x")  # the folder really is read-only
        for question in ("fatigue after exertion", "Hilft Pacing bei Erschöpfung?"):
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "qa.serve.cli",
                    "ask",
                    question,
                    "--index",
                    str(index),
                    "--local",
                    "--json",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout)["studies"], question
        server, port = _serve(tmp_path, ["--no-update", "--index", str(index)])
        client = _client(server, port, tmp_path)
        assert client.predict("Hilft Pacing bei Erschöpfung?", api_name="/ask")["studies"]
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        undo()
    assert sorted(p.name for p in index.iterdir()) == before
