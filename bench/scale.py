"""Scale benchmark: the whole index at thousands of summaries, and vector search alone at 1M passages.

Part A builds corpora of N summaries made from the real corpus (titles, DOIs and sentences
varied so that no two files are identical) and times, for each N, in a fresh process: a full
build, the update after one summary changes, the update with no change, warm query latency
(with and without reranking, when the search has it), peak memory and index size on disk.
With `--fake-embedder` (or for sizes from `--fake-from` on) passages are embedded by a cheap
deterministic hash embedder, so index and update mechanics can be timed at 30k-100k summaries
without hours of embedding (MiniLM embeds ~28 passages/s on 2 cores); questions are still
encoded by the real model, so query latency includes it. Rows say which embedder they used.

Part B times vector search alone at `--vectors` (default 1M) synthetic unit vectors of 384
dimensions, clustered around the real corpus's passage vectors: build time, single-query
p50/p95 and recall@10 against exact search, for the exact and the approximate store of
`qa/index/vectorstore.py`, and the exact store's latency by size (which sets `APPROXIMATE_FROM`).

Usage:
  python bench/scale.py                                   # part A at 3k (real model), part B at 1M
  python bench/scale.py --part a --sizes 3000,30000,100000 --fake-from 30000
  python bench/scale.py --part b --vectors 1000000 --hnsw
  python bench/scale.py --part a --sizes 28600 --fake-from 0 --store URL --replica URL2   # PostgreSQL, 200k passages
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.index.vectorstore import ExactStore, IVFStore, nlist_for, recall_at  # noqa: E402

SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus" / "summaries"
QUESTIONS = SHARED / "eval" / "questions-dev.jsonl"
DIM = 384


def spread(values: list[float]) -> str:
    """p50 / p95 (min-max) of milliseconds, for one table cell."""
    p50, p95 = np.percentile(values, [50, 95])  # linear interpolation, as bench/run.py
    return f"{p50:.1f} / {p95:.1f} ({min(values):.1f}-{max(values):.1f})"


def load() -> str:
    """The 1-minute load average: other work on the 2 cores inflates every figure."""
    return f"{os.getloadavg()[0]:.1f}"


def peak_mib() -> float:
    """Peak resident memory of this process, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def folder_mib(folder: Path) -> float:
    """Size of the files the live manifest reads (its base generation and deltas, and itself), MiB."""
    manifest = json.loads((folder / "manifest.json").read_text())
    gens = {manifest.get("base", manifest["generation"]), *manifest.get("deltas", [])}
    files = [folder / "manifest.json"]
    for path in folder.iterdir():
        match = re.match(r"^[a-z]+-(\d+)(\.|$)", path.name)
        if match and int(match.group(1)) in gens:
            files.extend([path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()])
    return sum(p.stat().st_size for p in files) / 2**20


# ---------------------------------------------------------------------------------------------
# Part A: synthetic corpora from the real one


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_DOI = re.compile(r"(https?://(?:dx\.)?doi\.org/)(10\.\d{4,9}/[^\s)\]]+)")
_TITLE = re.compile(r'^title: "(.*)"$', re.M)
_NOT_PROSE = ("#", "-", "<", "|", "*")  # headings, lists, HTML, tables keep their lines
_QUALIFIERS = (
    "a follow-up",
    "a second cohort",
    "a replication",
    "an extended sample",
    "a pilot",
    "a re-analysis",
)


def vary(text: str, copy: int, donors: list[str], rng: random.Random) -> str:
    """A distinct variant of one summary: new title and DOI, sentences reordered and borrowed."""
    if copy == 0:
        return text
    qualifier = _QUALIFIERS[copy % len(_QUALIFIERS)]
    text = _TITLE.sub(lambda m: f'title: "{m.group(1)} ({qualifier}, {copy})"', text, count=1)
    text = _DOI.sub(lambda m: f"{m.group(1)}{m.group(2)}.v{copy}", text)
    head, sep, body = text.partition("\n## ")
    out = []
    for line in body.split("\n"):
        sentences = _SENTENCE.split(line) if not line.startswith(_NOT_PROSE) else [line]
        if len(sentences) > 1:
            rng.shuffle(sentences)
            sentences[rng.randrange(len(sentences))] = rng.choice(donors)  # one from another summary
            line = " ".join(sentences)
        out.append(line)
    return head + sep + "\n".join(out)


def make_corpus(size: int, folder: Path, source: Path = CORPUS) -> Path:
    """`size` distinct summaries in `folder`, made from the files in `source` (reused if present)."""
    marker = folder / ".complete"
    if marker.exists() and marker.read_text() == str(size):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    files = sorted(source.glob("*.md"))
    texts = [p.read_text(encoding="utf-8") for p in files]
    prose = [
        line for t in texts for line in t.partition("\n## ")[2].split("\n") if not line.startswith(_NOT_PROSE)
    ]
    donors = [s for line in prose for s in _SENTENCE.split(line) if 40 < len(s) < 300][:5000]
    rng = random.Random(size)
    for i in range(size):
        base = i % len(files)
        name = f"{i // len(files):04d}_{files[base].name}"
        (folder / name).write_text(vary(texts[base], i // len(files), donors, rng), encoding="utf-8")
    marker.write_text(str(size))
    return folder


class HashEmbedder:
    """Cheap deterministic passage vectors (a hash of the text seeds a random unit vector).

    Only for timing index mechanics at sizes the real model would take hours to embed; its
    vectors carry no meaning. Questions go to `query_model` (the real one) when given, so
    query latency still includes encoding a question.
    """

    name = "hash-embedder (benchmark only)"
    dimension = DIM
    max_tokens = 256

    def __init__(self, query_model=None) -> None:
        self.query_model = query_model

    def count_tokens(self, text: str) -> int:
        """About 1.3 word pieces per word, as MiniLM's tokenizer gives on this corpus."""
        return int(len(text.split()) * 1.3) + 2

    def is_common_word(self, word: str) -> bool:
        """Defer to the real model when there is one."""
        return self.query_model.is_common_word(word) if self.query_model else word.isalpha()

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """One random unit vector per text, seeded by its hash."""
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            out[row] = np.random.default_rng(seed).standard_normal(DIM)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def encode_query(self, text: str) -> np.ndarray:
        """The real model's question vector, or a hash vector."""
        return self.query_model.encode_query(text) if self.query_model else self.encode([text])[0]

    def forget_queries(self) -> None:
        """Let the real model forget cached questions."""
        if self.query_model:
            self.query_model.forget_queries()


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def _clocked(fn, *args, **kwargs):
    """(result, wall seconds, CPU seconds of this process): CPU time is what other load hides least."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _search_variants(service, filtered: bool = False) -> dict[str, dict]:
    """Keyword arguments for searching without and with reranking, as this version supports;
    with `filtered`, each also with a tag and a date filter (Treatment, published 2024 or later)."""
    import inspect

    params = inspect.signature(service.searcher.search).parameters
    for name in ("use_reranker", "rerank"):
        if name in params:
            variants = {"no rerank": {name: False}, "rerank": {name: True}}
            break
    else:
        return {"search": {}}
    if filtered:
        from qa.search.types import parse_filters

        limits = parse_filters(["Treatment"], "2024", "")
        variants.update(
            {f"{label}, filtered": {**kw, "filters": limits} for label, kw in list(variants.items())}
        )
    return variants


def _replica_lag(reader, generation: int, timeout: float = 30.0) -> float:
    """Seconds until a reader service following a replica holds `generation` (its follow loop runs)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if reader.searcher.index.manifest.get("generation") == generation:
            return time.perf_counter() - start
        time.sleep(0.01)
    return float("inf")


def run_size(
    docs: Path,
    index_dir: Path,
    fake: bool,
    questions: list[str],
    repeats: int,
    store: str = "",
    replica: str = "",
) -> dict:
    """Part A for one corpus, in this process: builds, updates, queries; returns the figures.

    With `store` (a postgresql:// URL) the index is in PostgreSQL; with `replica` too, a reader
    on that streaming replica follows, and the time until it shows each edit is measured.
    """
    import threading

    from qa.index.postgres import PgStore
    from qa.models.embedding import get_embedder
    from qa.search.types import SearchSettings
    from qa.serve.service import Service

    real = get_embedder("")
    embedder = HashEmbedder(real) if fake else real
    shutil.rmtree(index_dir, ignore_errors=True)
    # With the hash embedder the multilingual stage is left out: its first open embeds every
    # summary with multilingual-e5 (about 90 minutes at 30k on 2 cores).
    settings = SearchSettings(multilingual=not fake)
    pg = PgStore(store) if store else None
    if pg is not None:
        with pg.connect() as conn:  # a fresh start: the build is a whole one
            conn.execute("DROP TABLE IF EXISTS qa_passages, qa_summaries, qa_changes, qa_meta")
        if replica:
            time.sleep(1.0)  # the replica replays the drop
    service = Service(docs, index_dir, embedder, settings=settings, store=pg)
    full, full_s, full_cpu = _clocked(service.rebuild)
    victim = sorted(docs.glob("*.md"))[len(full.added) // 2]
    original = victim.read_text(encoding="utf-8")
    reader, stop, lags, reader_load_s = None, threading.Event(), [], None
    if replica:
        reader = Service(docs, index_dir, embedder, settings=settings, writes=False, store=PgStore(replica))
        _, reader_load_s = _timed(reader.open)
        reader.follow_in_background(stop)

    def edit(n: int) -> None:
        victim.write_text(original + f"\nOne more sentence for the benchmark, edit {n}.\n", encoding="utf-8")

    compact_s = compact_cpu = after_s = after_cpu = None
    more: list[float] = []  # PostgreSQL: further single edits
    try:
        edit(1)
        one, one_s, one_cpu = _clocked(service.rebuild)  # a delta on the first generation
        if reader is not None:
            lags.append(_replica_lag(reader, service.searcher.index.manifest["generation"]))
        none, none_s, none_cpu = _clocked(service.rebuild)
        if pg is None:  # the files store: its deltas folded into a new generation, then one more edit
            edit(2)
            _, compact_s, compact_cpu = _clocked(service.rebuild, compact=True)
            edit(3)
            _, after_s, after_cpu = _clocked(service.rebuild)  # a delta on the compacted generation
        else:  # PostgreSQL has no compaction: more single edits, for the spread
            for n in (2, 3, 4, 5):
                edit(n)
                more.append(_clocked(service.rebuild)[1])
                if reader is not None:
                    lags.append(_replica_lag(reader, service.searcher.index.manifest["generation"]))
    finally:
        victim.write_text(original, encoding="utf-8")  # the corpus stays reusable
        stop.set()
    latency, latency_cpu = {}, {}
    for label, kwargs in _search_variants(service, filtered=pg is not None).items():
        for q in questions[:5]:  # warm-up
            service.searcher.search(q, k=10, **kwargs)
        times, cpu = [], []
        for _ in range(repeats):
            for q in questions:
                embedder.forget_queries()  # time the model too, not the question cache
                _, seconds, cpu_s = _clocked(service.searcher.search, q, k=10, **kwargs)
                times.append(seconds * 1000)
                cpu.append(cpu_s * 1000)
        latency[label], latency_cpu[label] = times, cpu
    return {
        "summaries": len(full.added),
        "passages": full.embedded_chunks,
        "embedder": embedder.name,
        "full_s": full_s,
        "one_s": one_s,
        "one": one.summary(),
        "none_s": none_s,
        "none": none.summary(),
        "compact_s": compact_s,
        "after_s": after_s,
        "latency": latency,
        "cpu": {
            "full_s": full_cpu,
            "one_s": one_cpu,
            "none_s": none_cpu,
            "compact_s": compact_cpu,
            "after_s": after_cpu,
            "latency": latency_cpu,
        },
        "peak_mib": peak_mib(),
        "index_mib": folder_mib(index_dir) if pg is None else _database_mib(pg),
        "vectors": service.searcher.index.vectors.ntotal,
        "more_one_s": more,
        "replica_lag_s": lags,
        "reader_load_s": reader_load_s,
    }


def _database_mib(store) -> float:
    """Size of the PostgreSQL database holding the index."""
    with store.connect() as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20


def part_a(
    sizes: list[int],
    fake_from: int,
    work: Path,
    repeats: int,
    n_questions: int,
    store: str = "",
    replica: str = "",
) -> list[str]:
    """Markdown for part A: one fresh process per size, so peak memory is that size's own."""
    rows = [
        "| summaries | passages | embedder | full build s | one changed s | no change s | "
        "compaction s | one changed after compaction s | "
        "warm query p50 / p95 ms (min-max) | query CPU p50 ms | peak MiB | index MiB |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    extra: list[str] = []
    for size in sizes:
        docs, started = work / f"docs-{size}", time.perf_counter()
        make_corpus(size, docs)
        print(f"[part A] {size} summaries made in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        index_dir = work / f"index-{size}"
        cmd = [sys.executable, __file__, "--child", str(docs), str(index_dir), str(repeats), str(n_questions)]
        if size >= fake_from:
            cmd.append("--fake-embedder")
        if store:
            cmd += ["--store", store] + (["--replica", replica] if replica else [])
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"part A at {size} summaries failed:\n{done.stderr[-3000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        queries = "<br>".join(f"{label}: {spread(t)}" for label, t in r["latency"].items())
        cpu = r["cpu"]
        query_cpu = "<br>".join(f"{label}: {np.median(t):.1f}" for label, t in cpu["latency"].items())
        # Wall seconds, then this process's CPU seconds in brackets.
        steps = " | ".join(
            f"{r[k]:.2f} ({cpu[k]:.2f})" if r[k] is not None else "-"
            for k in ("full_s", "one_s", "none_s", "compact_s", "after_s")
        )
        if r.get("more_one_s"):
            edits = [r["one_s"], *r["more_one_s"]]
            print(
                f"[part A] {size}: one changed summary, {len(edits)} edits: median {np.median(edits):.2f} s "
                f"({min(edits):.2f}-{max(edits):.2f})",
                file=sys.stderr,
            )
            extra.append(
                f"- {r['summaries']} summaries: one changed summary, {len(edits)} edits in a row: median "
                f"{np.median(edits):.2f} s ({min(edits):.2f}-{max(edits):.2f})"
            )
        if r.get("replica_lag_s"):
            lag = r["replica_lag_s"]
            extra.append(
                f"- {r['summaries']} summaries: a reader on the streaming replica showed each edit "
                f"{np.median(lag):.2f} s (median; {min(lag):.2f}-{max(lag):.2f}) after the writer's update "
                f"returned; the reader loaded the index in {r['reader_load_s']:.1f} s"
            )
        rows.append(
            f"| {r['summaries']} | {r['passages']} | {r['embedder']} | {steps} | {queries} | {query_cpu} | "
            f"{r['peak_mib']:.0f} | {r['index_mib']:.1f} |"
        )
        print(rows[-1], file=sys.stderr)
    return rows + ([""] + extra if extra else [])


# ---------------------------------------------------------------------------------------------
# Part B: vector search alone


def corpus_centres() -> np.ndarray:
    """Real MiniLM passage vectors to cluster around: from /work/idx-corpus if present, else random."""
    path = Path("/work/idx-corpus")
    files = sorted(path.glob("vectors-*.faiss")) if path.exists() else []
    if files:
        from qa.index.vectorstore import load_store

        return load_store(files[-1]).vectors()[1]
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((2000, DIM)).astype(np.float32)
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def clustered(n: int, centres: np.ndarray, seed: int, noise: float = 1.0) -> np.ndarray:
    """`n` unit vectors: a real passage vector plus up to as much of another, plus Gaussian noise.

    Chosen by matching the real corpus (2214 passages, the 60 dev questions, 32 IVF lists):
    recall@10 of real questions at nprobe 1/2/4/8/16 is 0.49/0.64/0.79/0.90/0.98, and of these
    vectors at the same size 0.45/0.65/0.80/0.92/0.98; query similarity to the top-1 / top-10
    is 0.61 / 0.50 for real questions and 0.56 / 0.48 here. Tighter clusters are much easier.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        x = centres[rng.integers(0, len(centres), m)].copy()
        x += rng.uniform(0, 1.0, (m, 1)).astype(np.float32) * centres[rng.integers(0, len(centres), m)]
        x += noise * rng.standard_normal((m, DIM)).astype(np.float32) / np.sqrt(DIM)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def single_query_ms(search, queries: np.ndarray, k: int = 10) -> tuple[list[float], np.ndarray]:
    """Milliseconds of each single-query search (after 5 warm-up queries), and the ids found."""
    for q in queries[:5]:
        search(q[None, :], k)
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        _, ids = search(q[None, :], k)
        times.append((time.perf_counter() - start) * 1000)
        found.append(ids[0])
    return times, np.array(found)


def part_b(n: int, n_queries: int, threshold_sizes: list[int], hnsw: bool, work: Path) -> list[str]:
    """Markdown for part B: exact vs approximate at `n` vectors, and exact latency by size."""
    centres = corpus_centres()
    (data, gen_s) = _timed(clustered, n, centres, 11)
    queries = clustered(n_queries, centres, 12)
    print(f"[part B] {n} vectors generated in {gen_s:.0f} s", file=sys.stderr)
    ids = np.arange(n, dtype=np.int64)
    rows = [
        f"{n} synthetic unit vectors, {DIM} dims, clustered around {len(centres)} real passage vectors; "
        f"{n_queries} held-out queries, k=10, one query at a time.",
        "",
        "| store | settings | build s | query p50 / p95 ms (min-max) | recall@10 | on disk MiB |",
        "|---|---|---:|---|---:|---:|",
    ]
    exact = ExactStore(DIM)
    _, build_s = _timed(exact.add, ids, data)
    times, _ = single_query_ms(exact.search, queries)
    _, truth = exact.search(queries, 10)
    rows.append(
        f"| exact | {exact.kind} | {build_s:.1f} | {spread(times)} | 1.000 | {_disk_mib(exact, work):.0f} |"
    )
    print(rows[-1], file=sys.stderr)
    ivf = IVFStore(DIM, nlist_for(n))
    _, build_s = _timed(ivf.add, ids, data)
    tuned = ivf.nprobe
    sweep = sorted({max(1, tuned // 2), tuned, min(ivf.nlist, tuned * 2), min(ivf.nlist, tuned * 4)})
    for nprobe in sweep:
        ivf.faiss_index.nprobe = nprobe
        times, found = single_query_ms(ivf.search, queries)
        label = "tuned at build" if nprobe == tuned else "for comparison"
        rows.append(
            f"| approximate | {ivf.kind} nlist={ivf.nlist} nprobe={nprobe} ({label}) | "
            f"{build_s if nprobe == tuned else 0:.1f} | {spread(times)} | {recall_at(found, truth):.3f} | "
            f"{_disk_mib(ivf, work):.0f} |"
        )
        print(rows[-1], file=sys.stderr)
    ivf.faiss_index.nprobe = tuned
    del ivf
    if hnsw:
        import faiss

        index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        _, build_s = _timed(index.add, data)
        for ef in (32, 64, 128):
            index.hnsw.efSearch = ef
            times, found = single_query_ms(index.search, queries)
            rows.append(
                f"| approximate (no removal) | faiss HNSW32 efSearch={ef} | {build_s:.1f} | {spread(times)} | "
                f"{recall_at(found, truth):.3f} | - |"
            )
            print(rows[-1], file=sys.stderr)
        del index
    del exact
    rows += [
        "",
        "By size (where `APPROXIMATE_FROM` comes from; the IVF store as `choose_store` would make it):",
        "",
    ]
    rows += [
        "| vectors | exact p50 / p95 ms (min-max) | IVF settings | IVF build s | IVF p50 / p95 ms (min-max) | IVF recall@10 |",
        "|---:|---|---|---:|---|---:|",
    ]
    for size in threshold_sizes:
        store = ExactStore(DIM)
        store.add(ids[:size], data[:size])
        times, _ = single_query_ms(store.search, queries)
        _, truth = store.search(queries, 10)
        del store
        ivf = IVFStore(DIM, nlist_for(size))
        _, build_s = _timed(ivf.add, ids[:size], data[:size])
        ivf_times, found = single_query_ms(ivf.search, queries)
        rows.append(
            f"| {size} | {spread(times)} | nlist={ivf.nlist} nprobe={ivf.nprobe} | {build_s:.1f} | "
            f"{spread(ivf_times)} | {recall_at(found, truth):.3f} |"
        )
        print(rows[-1], file=sys.stderr)
        del ivf
    return rows


def _disk_mib(store, work: Path) -> float:
    path = work / "store.faiss"
    store.save(path)
    size = path.stat().st_size / 2**20
    path.unlink()
    return size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    parser.add_argument("--sizes", default="3000", help="part A corpus sizes, comma-separated")
    parser.add_argument("--fake-embedder", action="store_true", help="part A: hash embedder for every size")
    parser.add_argument(
        "--fake-from", type=int, default=30_000, help="part A: hash embedder from this size on"
    )
    parser.add_argument("--repeats", type=int, default=2, help="part A: passes over the dev questions")
    parser.add_argument("--vectors", type=int, default=1_000_000, help="part B: number of vectors")
    parser.add_argument("--queries", type=int, default=200, help="part B: number of queries")
    parser.add_argument("--threshold-sizes", default="50000,100000,200000,400000")
    parser.add_argument("--hnsw", action="store_true", help="part B: also FAISS HNSW (slow to build)")
    parser.add_argument(
        "--work", type=Path, default=None, help="folder for corpora and indexes (default: /tmp)"
    )
    parser.add_argument("--questions-a", type=int, default=60, help="part A: how many dev questions")
    parser.add_argument(
        "--store",
        default="",
        metavar="URL",
        help="part A: the index in PostgreSQL at this URL (its tables are replaced)",
    )
    parser.add_argument(
        "--replica",
        default="",
        metavar="URL",
        help="part A with --store: a streaming replica of it, for a reader",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        docs, index_dir, repeats = Path(args.child[0]), Path(args.child[1]), int(args.child[2])
        n_questions = int(args.child[3]) if len(args.child) > 3 else 60
        questions = [
            json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()
        ][:n_questions]
        result = run_size(docs, index_dir, args.fake_embedder, questions, repeats, args.store, args.replica)
        print(json.dumps(result))
        return 0

    work = args.work or Path(tempfile.gettempdir()) / "qa-bench-scale"
    work.mkdir(parents=True, exist_ok=True)
    print("# summary-qa scale benchmark\n")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"FAISS {__import__('faiss').__version__}; {time.strftime('%Y-%m-%d %H:%M')}; "
        f"load average at start {load()}\n"
    )
    if args.part in ("a", "both"):
        sizes = [int(s) for s in args.sizes.split(",") if s]
        fake_from = 0 if args.fake_embedder else args.fake_from
        print("## Part A: the whole index\n")
        print(
            "Each size in a fresh process; updates go through qa.serve.service.Service.rebuild (read the "
            "folder, update the index, make the new searcher) with the model loaded: one summary edited "
            "(written as a delta on the generation), no change, an edit folded into a new generation "
            "(compaction, `rebuild(compact=True)`), then one more edit (a delta on the compacted "
            "generation). Hash-embedder rows leave the multilingual stage out. Queries are the 60 dev questions through Searcher.search, "
            f"k=10, {args.repeats} passes over the first {args.questions_a}. Rows with the hash embedder embed passages with a cheap "
            "fake (question vectors from the real model), so their build times exclude real embedding. "
            "Step cells: wall seconds (CPU seconds of the process); with other work on the 2 cores the "
            "CPU figures are the steadier ones.\n"
        )
        if args.store:
            from qa.index.postgres import safe_url

            print(
                f"Store: PostgreSQL + pgvector at {safe_url(args.store)} (tables replaced); hybrid search "
                "p50/p95 with and without a tag + date filter (Treatment, published 2024 or later).\n"
            )
        rows = part_a(sizes, fake_from, work, args.repeats, args.questions_a, args.store, args.replica)
        print("\n".join(rows) + "\n", flush=True)
        print(f"Load average after part A: {load()}\n")
    if args.part in ("b", "both"):
        print("## Part B: vector search alone\n")
        thresholds = [int(s) for s in args.threshold_sizes.split(",") if s]
        print("\n".join(part_b(args.vectors, args.queries, thresholds, args.hnsw, work)) + "\n")
        print(f"Peak memory of this process: {peak_mib():.0f} MiB; load average at end {load()}\n")
    print(f"Latency cells: p50 / p95 of single calls (min-max). Work folder: {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
