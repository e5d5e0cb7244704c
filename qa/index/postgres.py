"""The index in PostgreSQL + pgvector: for when one machine is not enough (`--store postgresql://…`).

The files + FAISS store (`qa.index.store`) stays the embedded default. Here the same index lives
in four tables, and the same search stages run over it:

- `qa_meta`: one row, the manifest (model, dimension, chunker, next id, summaries folder) and
  the generation, which every update raises by one;
- `qa_summaries`: per summary its path, content hash and file stats (what the next update
  compares), and its passage ids;
- `qa_passages`: each passage (JSON, as the files store writes it), its tags and publication
  date (columns, so filters run inside the SQL), its vector (pgvector, HNSW by inner product)
  and its sentences' vectors for highlighting;
- `qa_changes`: per generation the passage ids it removed and added, so a reader follows an
  update by reading only what changed.

One transaction per update replaces the manifest, generations and deltas of the files store:
a writer killed mid-update leaves the previous state, and the next run finds nothing to clean.
Readers poll the generation (twice a second; NOTIFY does not reach a streaming replica), so a
`qa serve --no-update --store URL` pointed at a replica follows the writer on the primary.

Keyword search (BM25) runs in the reading process from the passages' text kept here, with the
same tokenizer and bm25s as the files store, so results are equal by construction. Measured in
the issue at 200k passages: exact BM25 in SQL took 350 ms p50 (over the 200 ms p95 target) and
the fast SQL variant was approximate (top 100 equal in 39 of 60); bm25s in process takes a few
milliseconds. Dense search runs in PostgreSQL (`PgVectors`), filters included.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from qa.corpus.chunking import Chunk
from qa.corpus.documents import LoadResult, load_folder
from qa.errors import IndexStateError
from qa.index.deltas import apply_keywords
from qa.index.files import chunk_from_json, chunk_to_json, utc_now
from qa.index.keywords import KeywordIndex, tokenize
from qa.index.segments import COMPACT_SHARE
from qa.index.sentences import CACHE_PASSAGES, SentenceVectors
from qa.index.store import Index
from qa.index.update import UpdateReport, assign_ids, compatible, plan_update, take_out
from qa.index.vectorstore import ExactStore, VectorStore, as_ids, as_vectors
from qa.index.writing import Progress, RetryCache, UpdateJob, embed
from qa.models.embedding import Embedder

#: Generations whose changes are kept for readers that lag; one further behind loads whole.
KEEP_CHANGES = 1000
#: The tables' layout, recorded in the manifest: an index written with another is rebuilt whole.
SCHEMA = 2
#: HNSW settings (pgvector's defaults, recorded so results can be traced).
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 64
#: Candidates HNSW looks at per query, at least: pgvector returns at most `ef_search` rows.
EF_SEARCH = 100
#: The advisory lock that keeps to one writer per database (the files store's `.lock`).
WRITER_LOCK = 7_212_391


def is_url(text: object) -> bool:
    """Whether `text` names a PostgreSQL database (a `postgresql://` or `postgres://` URL)."""
    return str(text).startswith(("postgresql://", "postgres://"))


def safe_url(url: str) -> str:
    """`url` with its password hidden, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(an unreadable URL)"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def _psycopg():
    try:
        import psycopg
        from pgvector.psycopg import register_vector
    except ImportError:
        raise IndexStateError(
            'the PostgreSQL store needs its optional dependencies: pip install -e ".[postgres]"'
        ) from None
    return psycopg, register_vector


class PgStore:
    """An index in one PostgreSQL database: connections, schema, loading, following and writing."""

    def __init__(self, url: str, cache: Path | None = None) -> None:
        self.url = url
        self.label = safe_url(url)
        key = hashlib.sha256(self.label.encode()).hexdigest()[:12]
        #: A local folder for what a process keeps beside the index (the multilingual stage).
        self.cache = cache or Path(tempfile.gettempdir()) / f"summary-qa-{os.getuid()}" / f"pg-{key}"
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"PgStore({self.label})"

    # --- connections ---------------------------------------------------------------------

    def connect(self, register: bool = True):  # noqa: ANN201 (psycopg.Connection)
        """A new connection in autocommit mode (a transaction is always an explicit
        `conn.transaction()`); a plain message naming the URL (password hidden) when there is none."""
        psycopg, register_vector = _psycopg()
        try:
            conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=10, application_name="summary-qa"
            )
        except (psycopg.Error, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if self.url and "@" in self.url:
                reason = reason.replace(self.url, self.label)
            raise IndexStateError(f"cannot use the PostgreSQL database {self.label}: {reason}") from None
        if register:
            with suppress(psycopg.ProgrammingError):  # no extension yet (a new database)
                register_vector(conn)
        return conn

    def reader(self):  # noqa: ANN201
        """This thread's connection for queries (kept open; remade after a failure)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._local.conn = self.connect()
        return conn

    @contextmanager
    def query(self) -> Iterator[Any]:
        """This thread's connection; dropped (and remade next time) when a query fails."""
        conn = self.reader()
        try:
            yield conn
        except Exception:
            self._local.conn = None
            with suppress(Exception):  # already broken: nothing to release
                conn.close()
            raise

    # --- reading -------------------------------------------------------------------------

    def generation(self) -> int | None:
        """The generation now in the database (None when there is no index)."""
        psycopg, _ = _psycopg()
        try:
            with self.query() as conn:
                row = conn.execute("SELECT generation FROM qa_meta WHERE id = 1").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        except psycopg.Error as exc:
            raise IndexStateError(f"cannot read the index in {self.label}: {exc}") from None
        return int(row[0]) if row else None

    def exists(self) -> bool:
        """Whether the database holds an index."""
        return self.generation() is not None

    def read_manifest(self, conn, documents: bool = True) -> dict | None:  # noqa: ANN001
        """The manifest with its summaries (unless not `documents`), read on `conn`; None when
        there is no index."""
        if not _has_table(conn, "qa_meta"):
            return None
        row = conn.execute("SELECT manifest, generation FROM qa_meta WHERE id = 1").fetchone()
        if row is None:
            return None
        manifest = dict(row[0])
        manifest["generation"] = int(row[1])
        manifest["documents"] = self.summaries(conn) if documents else {}
        manifest["store"] = self.label
        return manifest

    def summaries(self, conn, doc_ids: list[str] | None = None) -> dict[str, dict]:  # noqa: ANN001
        """The summaries' entries (all, or those of `doc_ids`), read on `conn`."""
        # One JSON text for all: decoding 28,600 jsonb values one by one took 0.4 s.
        sql = "SELECT coalesce(json_object_agg(doc_id, entry), '{}')::text FROM qa_summaries"
        found = (
            conn.execute(sql + " WHERE doc_id = ANY(%s)", (doc_ids,))
            if doc_ids is not None
            else conn.execute(sql)
        )
        return json.loads(found.fetchone()[0])

    def _passages(self, conn, ids: list[int] | None = None, words: bool = False) -> list[tuple]:  # noqa: ANN001
        """(id, Chunk, None[, its words, its text's words]) per passage: sentence vectors are read
        when a passage is shown (`PgSentences`)."""
        sql = "SELECT id, chunk, NULL" + (", words, text_words" if words else "") + " FROM qa_passages"
        rows = conn.execute(sql + " WHERE id = ANY(%s)", (ids,)) if ids is not None else conn.execute(sql)
        out = []
        for row in rows:
            cid, chunk = chunk_from_json(row[1])
            out.append((cid, chunk, *row[2:]))
        return out

    @contextmanager
    def snapshot(self) -> Iterator[Any]:
        """A connection in one read-only transaction (REPEATABLE READ), so every table agrees."""
        psycopg, _ = _psycopg()
        conn = self.connect()
        try:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.transaction():
                yield conn
        except psycopg.Error as exc:
            raise IndexStateError(f"cannot read the index in {self.label}: {exc}") from None
        finally:
            conn.close()

    def load(self) -> Index:
        """The whole index: passages and sentence vectors in memory, vectors searched in PostgreSQL."""
        with self.snapshot() as conn:
            manifest = self.read_manifest(conn)
            if manifest is None:
                raise IndexStateError(f"no index in {self.label}: build one with: qa index --store URL")
            if manifest.get("schema") != SCHEMA:
                raise IndexStateError(
                    f"the index in {self.label} was written by another version of summary-qa; "
                    f"rebuild it with: qa index --rebuild --store URL"
                )
            rows = self._passages(conn, words=True)
        self.cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        chunks = {row[0]: row[1] for row in rows}
        ordered = sorted(chunks)
        # The words were tokenised by the writer: tokenising 200k passages twice took 49 s of
        # a reader's 73 s start. Split on spaces: a token never holds one.
        words = {row[0]: row[3] for row in rows}
        keywords = KeywordIndex.from_tokens(ordered, [words[i].split() for i in ordered])
        vectors = PgVectors(self, int(manifest["dimension"]), count=len(chunks))
        index = Index(self.cache, manifest, chunks, vectors, keywords, KeywordIndex.build([], []))
        text_words = {row[0]: row[4] for row in rows}
        doc_ids = sorted(index.documents)
        index.study_keywords = KeywordIndex.from_tokens(
            doc_ids, [_study_tokens(index, d, text_words) for d in doc_ids]
        )
        index.sentences = PgSentences(
            index.model, self, int(manifest["dimension"]), {c.text: i for i, c in chunks.items()}
        )
        return index

    def sentence_rows(self, ids: list[int], dimension: int) -> dict[int, np.ndarray]:
        """The stored sentence vectors of passages, by id (those with none are left out)."""
        psycopg, _ = _psycopg()
        try:
            with self.query() as conn:
                found = conn.execute("SELECT id, sentences FROM qa_passages WHERE id = ANY(%s)", (ids,))
                return {
                    int(cid): np.frombuffer(data, dtype=np.float16).reshape(-1, dimension)
                    for cid, data in found
                    if data is not None
                }
        except psycopg.Error as exc:
            raise IndexStateError(f"cannot read the index in {self.label}: {exc}") from None

    def follow(self, current: Index) -> Index:
        """The index now in the database, for a reader holding `current`: only what changed is read.

        A reader too far behind (changes no longer kept), or after a rebuild, loads whole; so does
        one whose keyword layers grew past a compaction's share (their statistics are the base's).
        """
        mine = int(current.manifest["generation"])
        with self.snapshot() as conn:
            manifest = self.read_manifest(conn, documents=False)
            if manifest is None:
                raise IndexStateError(f"the index in {self.label} is gone")
            if manifest["generation"] == mine:
                return current
            changes = conn.execute(
                "SELECT generation, removed, added, rebuilt, docs FROM qa_changes WHERE generation > %s "
                "ORDER BY generation",
                (mine,),
            ).fetchall()
            whole = (
                not changes
                or changes[0][0] != mine + 1
                or any(c[3] for c in changes)
                or manifest.get("dimension") != current.manifest.get("dimension")
            )
            if not whole:
                removed = [int(i) for c in changes for i in c[1]]
                added_ids = sorted({int(i) for c in changes for i in c[2]} - set(removed))
                rows = self._passages(conn, added_ids)
                # Only the summaries these generations touched are read again.
                touched = sorted({d for c in changes for d in c[4]})
                manifest["documents"] = _touched(current.documents, touched, self.summaries(conn, touched))
        if whole:
            return self.load()
        index = current.fork(manifest, PgVectors(self, int(manifest["dimension"]), count=0))
        gone = [(cid, index.chunks.pop(cid)) for cid in removed if cid in index.chunks]
        added = [(cid, chunk) for cid, chunk, _ in rows]
        index.chunks.update(added)
        index.vectors.count = len(index.chunks)
        apply_keywords(index, gone, added)
        sentences = index.sentence_vectors()
        if isinstance(sentences, PgSentences):
            sentences.ids.update({chunk.text: cid for cid, chunk in added})
        if index.keywords.changed > COMPACT_SHARE * max(1, index.keywords.base.num_rows):
            return self.load()  # fresh statistics, as a compaction gives the files store
        new = {cid for cid, _ in added}
        index.changes = ([(cid, c) for cid, c in gone if cid not in new], added)
        return index

    # --- writing -------------------------------------------------------------------------

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """One writer at a time per database, across processes and hosts (a session advisory lock,
        released by the server when the writer's connection ends, even after kill -9)."""
        conn = self.connect(register=False)
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (WRITER_LOCK,))
            yield
        finally:
            conn.close()

    def write(self, change: PgChange) -> int:
        """Apply one update in one transaction; return the new generation.

        Raises `IndexStateError` when the database moved on since the update was planned.
        """
        psycopg, register_vector = _psycopg()
        conn = self.connect(register=False)  # transaction() below: BEGIN … COMMIT
        conn.execute("SET application_name = 'summary-qa-writer'")
        try:
            with conn.transaction():
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                register_vector(conn)
                generation = self._check_generation(conn, change)
                if change.rebuilt:
                    _create_schema(conn, change.dimension, replace=True)
                conn.execute("DELETE FROM qa_passages WHERE id = ANY(%s)", (change.removed,))
                conn.execute("DELETE FROM qa_summaries WHERE doc_id = ANY(%s)", (change.gone_docs,))
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO qa_summaries (doc_id, path, hash, entry) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (doc_id) DO UPDATE SET path = EXCLUDED.path, hash = EXCLUDED.hash, "
                        "entry = EXCLUDED.entry",
                        [
                            (d, e.get("path", ""), e.get("hash", ""), json.dumps(e))
                            for d, e in change.entries.items()
                        ],
                    )
                if change.rebuilt:  # a whole build: HNSW is made once after the rows, not row by row
                    conn.execute("DROP INDEX IF EXISTS qa_passages_embedding")
                _copy_passages(conn, change)
                if change.rebuilt:
                    conn.execute(_HNSW_INDEX)
                generation += 1
                manifest = {k: v for k, v in change.manifest.items() if k not in ("documents", "store")}
                manifest["generation"], manifest["schema"] = generation, SCHEMA
                conn.execute(
                    "INSERT INTO qa_meta (id, manifest, generation) VALUES (1, %s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET manifest = EXCLUDED.manifest, generation = EXCLUDED.generation",
                    (json.dumps(manifest), generation),
                )
                conn.execute(
                    "INSERT INTO qa_changes (generation, removed, added, rebuilt, docs) VALUES (%s, %s, %s, %s, %s)",
                    (
                        generation,
                        change.removed,
                        [cid for cid, _ in change.added],
                        change.rebuilt,
                        sorted(set(change.entries) | set(change.gone_docs)),
                    ),
                )
                conn.execute("DELETE FROM qa_changes WHERE generation <= %s", (generation - KEEP_CHANGES,))
                conn.execute("SELECT pg_notify('qa_index', %s)", (str(generation),))
        except psycopg.Error as exc:
            raise IndexStateError(
                f"the update of {self.label} failed and was rolled back ({type(exc).__name__}: {exc})"
            ) from None
        finally:
            conn.close()
        return generation

    def _check_generation(self, conn, change: PgChange) -> int:  # noqa: ANN001
        psycopg, _ = _psycopg()
        _create_schema(conn, change.dimension, replace=False)
        row = conn.execute("SELECT generation FROM qa_meta WHERE id = 1 FOR UPDATE").fetchone()
        generation = int(row[0]) if row else 0
        if row is not None and change.planned_from is not None and generation != change.planned_from:
            raise IndexStateError(
                f"the index in {self.label} was changed by another writer while this update ran; run it again"
            )
        return generation


class PgSentences(SentenceVectors):
    """Sentence vectors read from the database when their passage is first shown, then cached.

    Not all at a reader's start: at 200k passages they are 1.1 GB, and only the passages of an
    answer are ever highlighted (one query for all of them).
    """

    def __init__(self, model: str, store: PgStore, dimension: int, ids: dict[str, int]) -> None:
        super().__init__(model)
        self.store, self.dimension, self.ids = store, dimension, ids

    def fork(self) -> PgSentences:
        """A copy whose additions the original never sees."""
        return PgSentences(self.model, self.store, self.dimension, dict(self.ids))

    def lookup(self, texts: list[str], embedder) -> list[np.ndarray]:  # noqa: ANN001
        """Sentence vectors of each passage: from the database, else embedded (and cached)."""
        missing = {self.ids[t]: t for t in texts if t in self.ids and self.get(t) is None}
        if missing:
            try:
                found = self.store.sentence_rows(sorted(missing), self.dimension)
            except IndexStateError:  # the database is away: these sentences are embedded instead
                found = {}
            with self._lock:
                for cid, rows in found.items():
                    self._cache[missing[cid]] = rows
                while len(self._cache) > CACHE_PASSAGES:
                    self._cache.popitem(last=False)
        return super().lookup(texts, embedder)


@dataclass(frozen=True)
class PgChange:
    """One update to write: what went, what came, the summaries' entries and the manifest."""

    manifest: dict
    planned_from: int | None  # the generation the update was planned on (None: a whole build)
    removed: list[int]  # passage ids
    gone_docs: list[str]  # summaries removed
    entries: dict[str, dict]  # summaries added or changed (or whose file stats moved)
    added: list[tuple[int, Chunk]]
    vectors: np.ndarray  # of `added`, in order
    sentences: list[np.ndarray]  # sentence vectors of `added`, in order
    rebuilt: bool  # a whole build: tables remade, HNSW built after the rows

    @property
    def dimension(self) -> int:
        """The vectors' dimension."""
        return int(self.manifest["dimension"])


_HNSW_INDEX = (
    "CREATE INDEX IF NOT EXISTS qa_passages_embedding ON qa_passages USING hnsw (embedding vector_ip_ops) "
    f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
)


def _create_schema(conn, dimension: int, replace: bool) -> None:  # noqa: ANN001
    """The tables (made if missing; emptied, with passages remade for `dimension`, when `replace`)."""
    if replace:
        conn.execute("DROP TABLE IF EXISTS qa_passages, qa_summaries, qa_changes")
        conn.execute("DELETE FROM qa_meta") if _has_table(conn, "qa_meta") else None
    conn.execute(
        "CREATE TABLE IF NOT EXISTS qa_meta (id int PRIMARY KEY CHECK (id = 1), manifest jsonb NOT NULL, "
        "generation bigint NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS qa_summaries (doc_id text PRIMARY KEY, path text NOT NULL, "
        "hash text NOT NULL, entry jsonb NOT NULL)"
    )
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS qa_passages (id bigint PRIMARY KEY, doc_id text NOT NULL DEFAULT '', "
        f"chunk text NOT NULL DEFAULT '', tags text[] NOT NULL DEFAULT '{{}}', "
        f"published text COLLATE \"C\" NOT NULL DEFAULT '', embedding vector({int(dimension)}) NOT NULL, "
        f"sentences bytea, words text NOT NULL DEFAULT '', text_words text NOT NULL DEFAULT '')"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS qa_passages_doc ON qa_passages (doc_id)")
    conn.execute("CREATE INDEX IF NOT EXISTS qa_passages_published ON qa_passages (published)")
    conn.execute("CREATE INDEX IF NOT EXISTS qa_passages_tags ON qa_passages USING gin (tags)")
    if not replace:
        conn.execute(_HNSW_INDEX)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS qa_changes (generation bigint PRIMARY KEY, removed bigint[] NOT NULL, "
        "added bigint[] NOT NULL, rebuilt boolean NOT NULL DEFAULT false, docs text[] NOT NULL DEFAULT '{}')"
    )


def _touched(documents: dict[str, dict], touched: list[str], now: dict[str, dict]) -> dict[str, dict]:
    """`documents` with the `touched` summaries' entries as they are `now` (absent: removed)."""
    skip = set(touched)
    out = {d: e for d, e in documents.items() if d not in skip}
    out.update(now)
    return out


def _study_tokens(index: Index, doc_id: str, text_words: dict[int, str]) -> list[str]:
    """`tokenize(study_text(index.chunks_of(doc_id)))` from each passage's stored words: the same
    bag of words, as no token crosses the line breaks that join the passages."""
    ids = [i for i in index.documents.get(doc_id, {}).get("chunks", []) if i in index.chunks]
    if not ids:
        return []
    tokens = tokenize(index.chunks[ids[0]].citation.title)
    for cid in ids:
        tokens += text_words[cid].split()
    return tokens


def _has_table(conn, name: str) -> bool:  # noqa: ANN001
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def _copy_passages(conn, change: PgChange) -> None:  # noqa: ANN001
    """The added passages, by COPY (binary): one round trip for thousands of rows."""
    if not change.added:
        return
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY qa_passages (id, doc_id, chunk, tags, published, embedding, sentences, words, text_words) "
            "FROM STDIN WITH (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["int8", "text", "text", "text[]", "text", "vector", "bytea", "text", "text"])
        for (cid, chunk), vector, sentences in zip(change.added, change.vectors, change.sentences):
            copy.write_row(
                (
                    cid,
                    chunk.doc_id,
                    chunk_to_json(cid, chunk),
                    list(chunk.citation.tags),
                    chunk.citation.published or "",
                    np.asarray(vector, dtype=np.float32),
                    np.asarray(sentences, dtype=np.float16).tobytes(),
                    # BM25's tokens, so a reader indexes them without tokenising (see `load`).
                    " ".join(tokenize(chunk.embed_text)),
                    " ".join(tokenize(chunk.text)),
                )
            )


class PgVectors(VectorStore):
    """Vectors in a PostgreSQL table, searched by pgvector's HNSW index (inner product).

    `search` takes the filters too, so tag and date limits run inside the SQL (with pgvector's
    iterative scan, which keeps looking until enough allowed rows are found) instead of after it.
    """

    #: The dense retriever passes filters here instead of filtering what comes back.
    filters_inside = True

    def __init__(self, store: PgStore, dimension: int, count: int | None = None, table: str = "qa_passages"):
        self.store, self.dimension, self.table = store, dimension, table
        if count is None:
            with store.query() as conn:
                count = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        #: Rows when loaded (or as changed through this object): counting 200k rows per question
        #: would cost more than the search.
        self.count = count

    @property
    def ntotal(self) -> int:
        """Number of vectors stored (when last known)."""
        return self.count

    def add(self, ids: Any, vectors: Any) -> None:
        """Store vectors (one transaction)."""
        psycopg, _ = _psycopg()
        ids, vectors = as_ids(ids), as_vectors(vectors, self.dimension)
        self._check_new_ids(ids, len(vectors))
        try:
            with self.store.query() as conn, conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {self.table} (id, embedding) VALUES (%s, %s)",
                    [(int(i), v) for i, v in zip(ids, vectors)],
                )
        except psycopg.errors.UniqueViolation:
            raise ValueError("ids must be unique (one is stored already)") from None
        self.count += len(ids)

    def remove(self, ids: Any) -> int:
        """Forget vectors by id; unknown ids are ignored."""
        ids = [int(i) for i in as_ids(ids)]
        if not ids:
            return 0
        with self.store.query() as conn:
            gone = conn.execute(f"DELETE FROM {self.table} WHERE id = ANY(%s)", (ids,)).rowcount
        self.count -= gone
        return gone

    def search(self, vectors: Any, n: int, filters: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the `n` nearest rows per query that pass `filters` (a `Filters`)."""
        vectors = as_vectors(vectors, self.dimension)
        n = max(1, n)
        where, params = _where(filters)
        sql = (
            f"SELECT id, (embedding <#> %s) AS distance FROM {self.table} {where} "
            f"ORDER BY distance LIMIT {int(n)}"
        )
        if where:  # relaxed order: results re-sorted here, as pgvector's documentation advises
            sql = f"WITH found AS MATERIALIZED ({sql}) SELECT id, distance FROM found ORDER BY distance"
        out_scores = np.full((len(vectors), n), -np.inf, dtype=np.float32)
        out_ids = np.full((len(vectors), n), -1, dtype=np.int64)
        psycopg, _ = _psycopg()
        for attempt in (1, 2):
            try:
                with self.store.query() as conn, conn.transaction():
                    conn.execute(f"SET LOCAL hnsw.ef_search = {min(max(EF_SEARCH, n), 1000)}")
                    if where:
                        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                    for row, query in enumerate(vectors):
                        found = conn.execute(sql, (query, *params)).fetchall()
                        for col, (cid, distance) in enumerate(found[:n]):
                            out_ids[row, col], out_scores[row, col] = cid, -distance
                return out_scores, out_ids
            except psycopg.OperationalError as exc:
                # A dropped connection (a restart, a failover): one more try on a new one.
                if attempt == 2:
                    raise IndexStateError(f"cannot search the index in {self.store.label}: {exc}") from None
        raise AssertionError("unreachable")

    def get(self, ids: Any) -> np.ndarray:
        """The stored vectors of `ids`; KeyError for one not stored."""
        ids = [int(i) for i in as_ids(ids)]
        with self.store.query() as conn:
            found = dict(conn.execute(f"SELECT id, embedding FROM {self.table} WHERE id = ANY(%s)", (ids,)))
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(missing[0])
        return np.asarray([_array(found[i]) for i in ids], dtype=np.float32).reshape(-1, self.dimension)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (id, vector), to move the vectors into another store without re-embedding."""
        with self.store.query() as conn:
            rows = conn.execute(f"SELECT id, embedding FROM {self.table} ORDER BY id").fetchall()
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        vectors = np.asarray([_array(r[1]) for r in rows], dtype=np.float32)
        return ids, vectors.reshape(-1, self.dimension)

    def describe(self) -> dict[str, Any]:
        """The kind and settings."""
        return {
            "kind": "pgvector-hnsw",
            "dimension": self.dimension,
            "m": HNSW_M,
            "ef_construction": HNSW_EF_CONSTRUCTION,
            "ef_search": EF_SEARCH,
        }

    def copy(self) -> VectorStore:
        """An independent in-memory copy (exact FAISS) of what the table holds."""
        exact = ExactStore(self.dimension)
        ids, vectors = self.vectors()
        if len(ids):
            exact.add(ids, vectors)
        return exact

    def to_bytes(self) -> bytes:
        """The vectors as a FAISS file (an export: the table stays the store)."""
        exact = self.copy()
        assert isinstance(exact, ExactStore)
        return exact.to_bytes()


def _array(value: Any) -> np.ndarray:
    """A vector column's value as float32 (pgvector gives numpy arrays, or `Vector` in binary)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def _where(filters: Any) -> tuple[str, list]:
    """The SQL condition for `Filters` (the same rules as `Filters.allows`) and its parameters."""
    if filters is None or not getattr(filters, "active", False):
        return "", []
    parts, params = [], []
    if filters.tags:
        parts.append("tags && %s")
        params.append(list(filters.tags))
    if filters.date_from:
        parts.append("published <> '' AND published >= %s")
        params.append(filters.date_from)
    if filters.date_to:
        parts.append("published <> '' AND published <= %s")
        params.append(filters.date_to)
    if filters.exclude:
        parts.append("NOT (doc_id = ANY(%s))")
        params.append(list(filters.exclude))
    return "WHERE " + " AND ".join(parts), params


def update_postgres(
    store: PgStore,
    docs: Path | LoadResult,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    switch_docs: bool = False,
    progress: Progress | None = None,
    current: Index | None = None,
    retry: RetryCache | None = None,
    load: bool = True,
) -> tuple[Index, UpdateReport]:
    """Bring the index in `store` up to date with the summaries in `docs`, in one transaction.

    The same plan as the files store (`qa.index.update`): unchanged files are not read again,
    only added and changed summaries are embedded, an unreadable file keeps its last good
    passages, and an update that would empty the index or switch folders is refused. `current`,
    the index the caller holds, is followed (only what changed is read back) instead of loaded.
    Without `load` (and no `current`) the index returned holds the summaries but no passages:
    a one-shot `qa index` need not read 200k passages back to print two counts.
    """
    with store.writer_lock():
        before = None
        if not rebuild:
            with store.snapshot() as conn:
                # The summaries of the index the caller holds, when it is still the live one:
                # reading 28,600 entries back took 0.3 s of an update that changes one.
                live = current is not None and current.manifest.get("store") == store.label
                before = store.read_manifest(conn, documents=not live)
                if before is not None and live:
                    same = before["generation"] == current.manifest.get("generation")
                    before["documents"] = current.documents if same else store.summaries(conn)
        known = dict(before["documents"]) if before else {}
        loaded = docs if isinstance(docs, LoadResult) else load_folder(docs, known=known)
        report = UpdateReport()
        base = _light_index(store, before, embedder)
        reason = "asked to rebuild" if rebuild else (compatible(base, embedder) if before else "")
        if before is not None and not reason and before.get("schema") != SCHEMA:
            reason = "its tables were written by another version of summary-qa"
        previous = None
        if reason:  # a whole build: unreadable files still keep the passages they had
            if current is not None and current.manifest.get("store") == store.label:
                previous = current  # the caller's: not read again
            else:
                with suppress(IndexStateError):  # unless the old index cannot be read either
                    previous = store.load() if store.exists() else None
            base = _light_index(store, None, embedder)
        job = UpdateJob(
            store.label, embedder, rebuild, switch_docs or rebuild, progress, retry or RetryCache()
        )
        plan = plan_update(job, base, previous, loaded, report)
        report.rebuilt_reason = reason
        removed_ids, _ = take_out(base, report)
        new_chunks = assign_ids(base, plan, previous, report)
        embed(base, new_chunks, job)
        report.embedded_chunks = len(new_chunks)
        if plan.loaded.folder is not None:
            base.manifest["docs"] = str(plan.loaded.folder)
        whole = before is None or bool(reason)
        entries = {d: e for d, e in base.documents.items() if whole or known.get(d) != e}
        gone = sorted(set(known) - set(base.documents)) if not whole else []
        if not (whole or entries or gone or removed_ids or base.manifest.get("docs") != before.get("docs")):
            if current is not None and current.manifest.get("generation") == before["generation"]:
                return current, report
            if current is None and not load:
                return base, report
            return (store.follow(current) if current is not None else store.load()), report
        texts = [chunk.text for _, chunk in new_chunks]
        sentences = SentenceVectors(embedder.name)
        sentences.keep(job.retry.sentences.get(embedder.name, {}))  # what a failed write embedded
        sentence_vectors = sentences.lookup(texts, embedder)
        base.manifest["updated_at"] = utc_now()
        if whole:
            base.manifest["built_at"] = utc_now()
        change = PgChange(
            base.manifest,
            None if whole else before["generation"],
            removed_ids,
            gone,
            entries,
            new_chunks,
            base.vectors.get([cid for cid, _ in new_chunks])
            if new_chunks
            else np.zeros((0, embedder.dimension)),
            sentence_vectors,
            whole,
        )
        try:
            store.write(change)
        except IndexStateError:
            base.sentences = SentenceVectors(embedder.name, dict(zip(texts, sentence_vectors)))
            job.retry.keep(base, embedder, new_chunks, texts)  # a retry from this process embeds none again
            raise
        job.retry.clear()
    if current is not None and not whole and current.manifest.get("store") == store.label:
        return store.follow(current), report
    return (store.load() if load or current is not None else base), report


def _light_index(store: PgStore, manifest: dict | None, embedder: Embedder) -> Index:
    """What planning an update needs: the manifest and summaries, no passages (they stay in the database)."""
    if manifest is None:
        index = Index.empty(store.cache, embedder)
        index.manifest["store"] = store.label
        return index
    manifest = {**manifest, "documents": {d: dict(e) for d, e in manifest["documents"].items()}}
    empty = KeywordIndex.build([], [])
    return Index(store.cache, manifest, {}, ExactStore(int(manifest["dimension"])), empty, empty)
