"""Several `qa serve` processes on one index while `qa index` writes; the light query path; sentence vectors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from qa.corpus.documents import load_folder
from qa.index.sentences import sentences_of
from qa.index.store import Index
from qa.index.update import update_index
from qa.serve import cli, remote
from tests.conftest import CORPUS, ROOT, free_port

pytestmark = pytest.mark.slow
QA = str(Path(sys.executable).with_name("qa"))
NEW_WORD = "zorblaxin"  # in no real summary: only the added one answers for it


def _docs(folder: Path, n: int = 6) -> Path:
    folder.mkdir()
    for path in sorted(CORPUS.glob("*.md"))[:n]:
        shutil.copy(path, folder)
    return folder


def _new_summary(folder: Path) -> None:
    (folder / "zz-new.md").write_text(
        f'---\ntitle: "{NEW_WORD.title()} for post-exertional malaise"\ntags:\n- 💊 Treatment\n'
        "created: '2026-06-01'\npublished: '2026-06-01'\n---\n\n"
        "<details>\n<summary>Doe et al. (2026)</summary>\n\n- **Authors:** Jane Doe\n"
        "- **Link:** [DOI](https://doi.org/10.9999/zz-new)\n\n</details>\n\n## Summary\n\n"
        f"{NEW_WORD.title()} improved post-exertional malaise in a small trial. "
        f"Patients taking {NEW_WORD} walked further after eight weeks.\n",
        encoding="utf-8",
    )


def test_cli_lists_match_the_library():
    from qa.config import DEFAULT_RERANK_BUSY, MODES, RERANKERS
    from qa.search.types import SearchSettings

    assert set(MODES) == {"hybrid", "dense", "bm25"} and set(RERANKERS) >= {"cross-encoder", "none"}
    assert SearchSettings().rerank_busy == DEFAULT_RERANK_BUSY


def test_light_embedder_matches_sentence_transformers(embedder):
    from qa.models.light import LightEmbedder

    light = LightEmbedder()
    texts = [
        "Has any antiviral helped ME/CFS patients?",
        "IL-6 and TNF-α were raised in 42 patients (p < 0.05) versus 30 controls.",
        "Post-exertional malaise is the hallmark of ME/CFS. " * 30,  # past the 256-token window
    ]
    cosine = (light.encode(texts) * embedder.encode(texts)).sum(1)
    assert cosine.min() >= 0.999, cosine
    assert light.name == embedder.name and light.dimension == embedder.dimension
    assert [light.count_tokens(t) for t in texts] == [embedder.count_tokens(t) for t in texts]


def test_sentence_vectors_are_stored_and_only_new_passages_embedded(tmp_path, embedder):
    docs = _docs(tmp_path / "docs", 3)
    index, _ = update_index(tmp_path / "index", load_folder(docs), embedder)
    gen = index.manifest["generation"]
    assert (tmp_path / "index" / f"sentences-{gen}.npy").exists()
    loaded = Index.load(tmp_path / "index")
    assert len(loaded.sentences.stored) == len({c.text for c in loaded.chunks.values()})

    calls: list[int] = []

    class Counting:
        def __getattr__(self, name):
            return getattr(embedder, name)

        def encode(self, texts, progress=False):
            calls.append(len(texts))
            return embedder.encode(texts, progress)

    _new_summary(docs)
    index, report = update_index(tmp_path / "index", load_folder(docs), Counting())
    new = [c for c in index.chunks.values() if c.doc_id == "zz-new.md"]
    # passages once, then their sentences once: nothing of the three unchanged summaries
    assert report.added == ["zz-new.md"] and sum(calls) <= 2 * sum(len(c.text) > 0 for c in new) + 4
    loaded = Index.load(tmp_path / "index")
    [text] = [c.text for c in new if NEW_WORD in c.text]
    stored = np.asarray(loaded.sentences.stored[text], dtype=np.float32)
    fresh = embedder.encode(sentences_of(text))
    assert np.allclose(stored, fresh, atol=2e-3)


def _ask(url: str, question: str) -> dict:
    return remote.ask(url, question, [], "", "", 5)


def test_two_servers_follow_one_writer_without_a_failed_request(tmp_path, embedder):
    docs = _docs(tmp_path / "docs", 3)
    index_dir = tmp_path / "index"
    assert cli.main(["index", "--docs", str(docs), "--index", str(index_dir), "--quiet"]) == 0
    ports = [free_port(), free_port()]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    servers = [
        subprocess.Popen(
            [QA, "serve", "--index", str(index_dir), "--port", str(port), "--no-update", "--rerank", "none"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}/" for port in ports]
    try:
        deadline = time.monotonic() + 45
        while len(remote.servers(index_dir)) < 2:
            assert time.monotonic() < deadline, "servers did not start"
            assert all(s.poll() is None for s in servers), servers[0].stdout.read()
            time.sleep(0.2)
        failures: list[str] = []
        done = {"n": 0}
        stop = threading.Event()

        def client(n: int) -> None:
            while not stop.is_set():
                try:
                    data = _ask(urls[n % 2], "Does exercise make symptoms worse?")
                    assert data["studies"], data
                    done["n"] += 1
                except Exception as exc:  # every kind counts as a failed request
                    failures.append(f"{type(exc).__name__}: {exc}")
                n += 1

        clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 20
        while done["n"] < 4 and not failures:  # both servers answering before the update
            assert time.monotonic() < deadline, "no answers before the update"
            time.sleep(0.1)
        before = done["n"]
        _new_summary(docs)
        assert cli.main(["index", "--docs", str(docs), "--index", str(index_dir), "--quiet"]) == 0
        deadline = time.monotonic() + 20
        served = set()
        while served != set(urls) and time.monotonic() < deadline:
            for url in urls:
                studies = _ask(url, f"Did {NEW_WORD} help post-exertional malaise?")["studies"]
                if studies and studies[0]["doc_id"] == "zz-new.md":
                    served.add(url)
            time.sleep(0.2)
        time.sleep(0.5)
        stop.set()
        for thread in clients:
            thread.join()
        assert served == set(urls), "a server did not pick up the new generation"
        assert not failures, failures[:3]
        assert done["n"] > before  # requests were answered during the update, not only before

        # `qa ask` from a cold process is answered by one of them.
        asked = subprocess.run(
            [QA, "ask", f"Did {NEW_WORD} help?", "--index", str(index_dir), "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "answered by the server" in asked.stderr and '"zz-new.md"' in asked.stdout
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=20)
    assert remote.servers(index_dir) == []  # each removed its file when stopped


def test_ask_without_a_server_never_imports_torch(tmp_path, embedder):
    docs = _docs(tmp_path / "docs", 3)
    update_index(tmp_path / "index", load_folder(docs), embedder)
    code = (
        "import sys; from qa.serve.cli import main; "
        f"code = main(['ask', 'Does exercise make symptoms worse?', '--index', {str(tmp_path / 'index')!r}, '--json']); "
        "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules, 'torch imported'; "
        "sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert '"studies"' in result.stdout and "answered by the server" not in result.stderr
