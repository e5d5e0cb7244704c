"""The app's API, driven through gradio_client against a launched server."""

from __future__ import annotations

import shutil
import socket

import pytest

from qa.app import CSS, Service, build_app, make_service
from qa.search import Searcher
from tests.conftest import CORPUS, SEEDS

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(service: Service, mcp: bool = False):
    from gradio_client import Client

    demo = build_app(service)
    port = _free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        css=CSS,
        mcp_server=mcp,
    )
    return demo, Client(f"http://127.0.0.1:{port}/", verbose=False)


@pytest.fixture
def seed_docs(tmp_path):
    """A summaries folder holding only the seed, as seed.md."""
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(next(SEEDS.glob("*.md")), docs / "seed.md")
    return docs


@pytest.fixture(scope="module")
def corpus_client(corpus_index, embedder):
    service = Service(CORPUS, corpus_index.folder, embedder, Searcher(corpus_index, embedder))
    demo, client = _launch(service)
    yield client
    demo.close()


def test_ask_returns_cited_passages(corpus_client):
    result = corpus_client.predict("Has any antiviral helped ME/CFS patients?", api_name="/ask")
    assert result["question"].startswith("Has any antiviral")
    assert len(result["studies"]) == 5
    first = result["studies"][0]
    citation = first["citation"]
    for key in ("label", "title", "authors", "year", "publisher", "url", "doi", "tags"):
        assert key in citation
    assert citation["label"] and citation["title"]
    passage = first["passages"][0]
    assert passage["section"] and passage["text"] and passage["score"] > 0
    assert "highlights" in passage
    assert all(h in passage["text"] for h in passage["highlights"])


def test_ask_applies_filters_and_k(corpus_client):
    result = corpus_client.predict("exercise", ["News"], "2025", "", 3, api_name="/ask")
    assert 0 < len(result["studies"]) <= 3
    for study in result["studies"]:
        assert "News" in study["citation"]["tags"]
        assert study["citation"]["published"] >= "2025"


def test_rebuild_picks_up_a_new_summary_without_restart(tmp_path, seed_docs):
    docs = seed_docs
    service = make_service(docs, tmp_path / "idx")
    demo, client = _launch(service)
    try:
        before = client.predict("oxaloacetate cognitive function trial", api_name="/ask")
        assert {s["doc_id"] for s in before["studies"]} == {"seed.md"}
        source = next(CORPUS.glob("2025-09-23_Relationships_Between_Fatigue*"))
        shutil.copy(source, docs / source.name)
        status, about = client.predict(api_name="/rebuild")
        assert "1 added" in status and "Summaries:** 2" in about
        after = client.predict("oxaloacetate cognitive function trial", api_name="/ask")
        assert after["studies"][0]["doc_id"] == source.name
    finally:
        demo.close()


def test_mcp_server_lists_the_ask_tool(tmp_path, seed_docs):
    docs = seed_docs
    import httpx

    demo, client = _launch(make_service(docs, tmp_path / "idx"), mcp=True)
    try:
        schema = httpx.get(client.src.rstrip("/") + "/gradio_api/mcp/schema", timeout=30).json()
        tools = {tool["name"]: tool for tool in schema}
        ask = next(tool for name, tool in tools.items() if name.endswith("ask"))
        assert "question" in ask["inputSchema"]["properties"]
        assert "research summaries" in ask["description"]
    finally:
        demo.close()


def test_watch_updates_the_index_when_a_summary_is_added_or_removed(tmp_path, seed_docs):
    docs = seed_docs
    import threading
    import time

    service = make_service(docs, tmp_path / "idx")
    stop = threading.Event()
    thread = service.watch(stop)
    try:
        time.sleep(0.5)  # let the watcher start
        source = next(CORPUS.glob("2025-09-23_Relationships_Between_Fatigue*"))
        shutil.copy(source, docs / source.name)
        deadline = time.monotonic() + 60
        while len(service.searcher.index.documents) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert set(service.searcher.index.documents) == {"seed.md", source.name}
        (docs / "seed.md").unlink()
        deadline = time.monotonic() + 60
        while len(service.searcher.index.documents) > 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert set(service.searcher.index.documents) == {source.name}
    finally:
        stop.set()
        thread.join(timeout=10)
