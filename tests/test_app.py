"""The app's API, driven through gradio_client against a launched server."""

from __future__ import annotations

import json
import re
import shutil
import threading

import pytest

from qa.search.pipeline import Searcher
from qa.serve.app import LAUNCH_OPTIONS, Service, build_app, make_service
from qa.serve.inputs import MAX_K
from tests.conftest import CORPUS, SEEDS, free_port

pytestmark = pytest.mark.slow


def _launch(service: Service, mcp: bool = False, operator: bool = False):
    from gradio_client import Client

    demo = build_app(service, operator=operator)
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        mcp_server=mcp,
        **LAUNCH_OPTIONS,
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


@pytest.fixture(scope="module")
def seed_server(tmp_path_factory):
    """The app over the seed alone, for visitors (no operator controls): (demo, client)."""
    docs = tmp_path_factory.mktemp("seed") / "docs"
    docs.mkdir()
    shutil.copy(next(SEEDS.glob("*.md")), docs / "seed.md")
    demo, client = _launch(make_service(docs, tmp_path_factory.mktemp("seed-index")))
    yield demo, client
    demo.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None,), "question must be text (got NoneType)"),
        ((42,), "question must be text (got int)"),
        ((["a", "b"],), "question must be text (got list)"),
        (("   ",), "question is empty"),
        (("x" * 1001,), "at most 1000 characters"),
        (("LDN", "Treatment"), None),  # one tag as a string is fine
        (("LDN", [1]), "tags must be a list of tag names"),
        (("LDN", ["Nonsense"]), "unknown tag(s)"),
        (("LDN", [], 2024), "From date must be text"),
        (("LDN", [], "2024-13-45"), "From date '2024-13-45' is not a real date"),
        (("LDN", [], "2024/01"), "From date must look like"),
        (("LDN", [], "2024-02-30"), "From date '2024-02-30' is not a real date"),
        (("LDN", [], "", "2023-13"), "To date '2023-13' is not a real date"),
        (("LDN", [], "2025", "2020"), "the From date (2025) is after the To date (2020)"),
        (("LDN", [], "", "", "abc"), "k must be a whole number from 1 to 20 (got 'abc')"),
        (("LDN", [], "", "", 0), "k must be from 1 to 20 (got 0)"),
        (("LDN", [], "", "", MAX_K + 1), "k must be from 1 to 20 (got 21)"),
        (("LDN", [], "", "", True), "k must be a whole number"),
        (("LDN", [], "", "", None), None),  # null means the default
        (("LDN", [], "", "", 3, 7), "previous must be text (got int)"),
        # Past what the models read, any Unicode: answered, never {"error": null} (issue 18, 20).
        (("LDN fatigue " + "!?" * 490,), None),
        (("病" * 999,), None),
    ],
)
def test_api_refuses_bad_input_with_a_clear_message_and_no_traceback(seed_server, capfd, args, message):
    from gradio_client.exceptions import AppError

    _, client = seed_server
    capfd.readouterr()
    if message is None:
        assert client.predict(*args, api_name="/ask")["studies"]
    else:
        with pytest.raises(AppError) as error:
            client.predict(*args, api_name="/ask")
        assert message in str(error.value)
    logged = capfd.readouterr()
    assert "Traceback" not in logged.err + logged.out


def test_a_lone_surrogate_in_the_json_gets_an_answer(seed_server, capfd):
    from qa.serve import remote

    _, client = seed_server
    capfd.readouterr()
    # httpx refuses to send it; the JSON escape "\ud800" is what a browser or script sends.
    data = remote.ask(client.src, "LDN \ud800 fatigue", [], "", "", 3)
    assert data["studies"] and "\ufffd" in data["question"]
    assert "Traceback" not in capfd.readouterr().err


def test_an_unknown_study_sent_to_the_picker_gets_a_line_not_a_traceback(seed_server, capfd):
    """The page's private "Cited study" event, called as a script could (issue 20, point 10)."""
    import httpx

    _, client = seed_server
    base = client.src.rstrip("/")
    config = httpx.get(f"{base}/config").json()
    pick = next(
        c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "qa-source-pick"
    )
    event = next(d for d in config["dependencies"] if d["targets"] and d["targets"][0][0] == pick)
    capfd.readouterr()
    shown = []
    for doc_id in ("no-such-study.md", "../../etc/passwd"):
        session = f"pick-{len(shown)}"
        payload = {"data": [doc_id], "fn_index": event["id"], "session_hash": session, "trigger_id": pick}
        assert httpx.post(f"{base}/gradio_api/queue/join", json=payload).status_code == 200
        with httpx.stream(
            "GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}, timeout=30
        ) as s:
            done = next(json.loads(line[5:]) for line in s.iter_lines() if "process_completed" in line)
        assert done["success"], done
        shown.append(done["output"]["data"][0])
    assert shown == ["<p>That study is no longer in the index.</p>"] * 2
    assert "Traceback" not in capfd.readouterr().err


def test_visitors_cannot_rebuild_or_upload(seed_server):
    import httpx

    _, client = seed_server
    base = client.src.rstrip("/")
    assert "/rebuild" not in str(client.view_api(print_info=False, return_format="dict"))
    with pytest.raises(ValueError, match="rebuild"):
        client.predict(api_name="/rebuild")
    called = httpx.post(f"{base}/gradio_api/call/rebuild", json={"data": []}, timeout=30)
    assert called.status_code >= 400, called.text  # Gradio answers 500 for an endpoint it lacks
    upload = httpx.post(f"{base}/gradio_api/upload", files={"files": ("x.txt", b"x" * 1000)}, timeout=30)
    assert upload.status_code == 413, upload.text


def test_rebuild_picks_up_a_new_summary_without_restart(tmp_path, seed_docs):
    docs = seed_docs
    service = make_service(docs, tmp_path / "idx")
    demo, client = _launch(service, operator=True)
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


class _Gated:
    """The fake embedder, holding every build's embedding until `gate` is set."""

    def __init__(self, inner, gate: threading.Event) -> None:
        self.inner, self.gate = inner, gate

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def encode(self, texts, progress=False):
        assert self.gate.wait(60), "the test never let the build go on"
        return self.inner.encode(texts, progress)


def test_a_new_folder_is_served_at_once_with_the_builds_progress_then_answered(tmp_path, fake_embedder):
    """Issue 19: `qa serve` on a folder without an index listens before the build is done."""
    from qa.search.types import SearchSettings
    from qa.serve.conversation import Conversation
    from qa.serve.handlers import Handlers
    from tests.conftest import write_summary

    docs = tmp_path / "docs"
    docs.mkdir()
    write_summary(
        docs, "pacing.md", "Pacing and energy envelopes", "Pacing reduced crashes in 40 of 50 people."
    )
    write_summary(docs, "ldn.md", "Low-dose naltrexone in ME/CFS", "Naltrexone eased pain for some patients.")
    gate = threading.Event()
    settings = SearchSettings(rerank="none", multilingual=False)
    service = Service(docs, tmp_path / "index", _Gated(fake_embedder, gate), settings=settings)
    service.build_in_background()
    demo, client = _launch(service)
    try:
        assert not service.ready
        with pytest.raises(Exception, match="being (read|prepared) for searching"):
            client.predict("Does pacing help?", api_name="/ask")
        page = {c.get("props", {}).get("elem_id"): c["props"] for c in client.config["components"]}
        assert "for searching" in page["qa-building"]["value"]
        handlers, conv = Handlers(service), Conversation()
        handlers.echo("Does pacing help?", conv)
        replies: list = []
        chat = threading.Thread(
            target=lambda: replies.append(handlers.respond(conv, [], "Any", "Any", 2, ""))
        )
        chat.start()
        chat.join(0.5)
        assert chat.is_alive() and "Searching…" in conv.html(), "the chat's question waits for the index"
        assert re.search(r"0 of [1-9]\d* passages done", handlers.build_tick()[0])
        gate.set()
        chat.join(60)
        assert replies and "Pacing and energy envelopes" in replies[0][0]
        assert handlers.build_tick()[0] == "" and service.wait_ready(1)
        assert client.predict("Does pacing help?", api_name="/ask")["studies"][0]["doc_id"] == "pacing.md"
    finally:
        gate.set()
        demo.close()
