"""Benchmark: build and update times, warm query latency per mode, and retrieval quality.

Usage: python bench/run.py [--corpus DIR] [--questions FILE] [--nfcorpus DIR] [--skip-nfcorpus] [--skip-latency]
                           [--compare-models]

Prints one Markdown report; the README quotes its latest output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.corpus.documents import load_folder  # noqa: E402
from qa.index.update import update_folder, update_index  # noqa: E402
from qa.models.embedding import get_embedder  # noqa: E402
from qa.search.pipeline import Searcher  # noqa: E402
from qa.search.types import SearchSettings  # noqa: E402

SHARED = ROOT.parent / "shared"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low, high = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def bench_index(corpus: Path, embedder) -> tuple[list[str], Searcher]:
    """Full build, one-edit update and no-change update on a temporary copy of the corpus."""
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    docs = work / "docs"
    shutil.copytree(corpus, docs)
    folder = work / "index"
    (index, report), full = timed(update_folder, folder, docs, embedder)
    victim = sorted(docs.glob("*.md"))[len(index.documents) // 2]
    victim.write_text(
        victim.read_text(encoding="utf-8") + "\nOne more sentence for the benchmark.\n", encoding="utf-8"
    )
    (_, one), one_s = timed(update_folder, folder, docs, embedder)
    (index, none), none_s = timed(update_folder, folder, docs, embedder)
    _, load_s = timed(load_folder, docs)
    rows = [
        "| step | seconds | what |",
        "|---|---:|---|",
        f"| full build | {full:.1f} | {len(report.added)} summaries, {report.embedded_chunks} passages embedded |",
        f"| update after editing one summary | {one_s:.2f} | {one.summary()} |",
        f"| update with no change | {none_s:.2f} | {none.summary()} |",
        f"| (reading and parsing all summaries, for comparison) | {load_s:.2f} | |",
    ]
    from qa.models.multilingual import open_stage

    _, stage_s = timed(open_stage, folder, index.chunks)
    rows.append(
        f"| multilingual stage, first open (multilingual-e5 over titles and Summary sections) | {stage_s:.1f} | |"
    )
    return rows, Searcher(index, embedder)


def bench_latency(index, embedder, questions: list[str], repeats: int = 3) -> list[str]:
    """Warm latency of the whole `Searcher.search` call per configuration, over the question set."""
    from quality import CONFIGS  # bench/ is on sys.path when run as a script

    rows = ["| configuration | p50 ms | p95 ms | mean ms | queries |", "|---|---:|---:|---:|---:|"]
    for name, settings in CONFIGS:
        searcher = Searcher(index, embedder, settings)
        for q in questions[:5]:  # warm-up
            searcher.search(q, k=10)
        times = []
        for _ in range(repeats):
            for q in questions:
                searcher.embedder.forget_queries()  # time the model too, not the question cache
                _, seconds = timed(searcher.search, q, k=10)
                times.append(seconds * 1000)
        rows.append(
            f"| {name} | {percentile(times, 50):.1f} | {percentile(times, 95):.1f} | "
            f"{statistics.mean(times):.1f} | {len(times)} |"
        )
    return rows


def bench_languages(index, embedder, path: Path) -> list[str]:
    """The multilingual question set through the service's searcher, by language."""
    from qa.evaluation import evaluate, load_questions
    from qa.serve.service import open_searcher

    report = evaluate(open_searcher(index, embedder), load_questions(path), k=10)
    rows = [
        f"## Questions in other languages ({path.name}, {len(report.rows)} questions; default configuration)\n",
        "| language | hit@5 | top1 | ndcg@10 | not_covered_false |",
        "|---|---:|---:|---:|---:|",
    ]
    for lang, m in sorted(report.by_lang.items()):
        rows.append(
            f"| {lang} | {m['hit@5']:.3f} | {m['top1']:.3f} | {m['ndcg@10']:.3f} | {m['not_covered_false']:.3f} |"
        )
    return rows


def bench_first_stage(corpus: Path, questions_path: Path) -> list[str]:
    """Build time and study recall of each embedding model as the first stage under the reranker."""
    from qa.evaluation import evaluate, load_questions

    questions = load_questions(questions_path)
    rows = [
        "| first stage | full build s | hybrid hit@5 | hybrid + rerank hit@5 | + rerank top1 | + rerank ndcg@10 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for model in ("", "bge-small-en-v1.5"):
        embedder = get_embedder(model)
        folder = Path(tempfile.mkdtemp(prefix="qa-bench-model-"))
        (index, _), built = timed(update_index, folder, load_folder(corpus), embedder)
        plain = evaluate(Searcher(index, embedder, SearchSettings(rerank="none")), questions, k=10).metrics
        ranked = evaluate(Searcher(index, embedder), questions, k=10).metrics
        rows.append(
            f"| {embedder.name} | {built:.1f} | {plain['hit@5']:.3f} | {ranked['hit@5']:.3f} | "
            f"{ranked['top1']:.3f} | {ranked['ndcg@10']:.3f} |"
        )
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=SHARED / "corpus" / "summaries")
    parser.add_argument("--questions", type=Path, default=SHARED / "eval" / "questions-dev.jsonl")
    parser.add_argument("--nfcorpus", type=Path, default=SHARED / "benchmarks" / "nfcorpus")
    parser.add_argument("--skip-nfcorpus", action="store_true", help="skip the public benchmark (minutes)")
    parser.add_argument(
        "--skip-latency", action="store_true", help="skip the warm latency table (quality figures only)"
    )
    parser.add_argument(
        "--latency-only",
        type=Path,
        metavar="INDEX",
        help="only time warm queries over an existing corpus index (the app's query path)",
    )
    parser.add_argument(
        "--compare-models",
        action="store_true",
        help="also build with bge-small-en-v1.5 and compare first stages (several minutes)",
    )
    args = parser.parse_args()

    print("# summary-qa benchmark\n")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    if args.latency_only:
        from qa.index.store import Index
        from qa.models.light import query_embedder

        questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
        index, embedder = Index.load(args.latency_only), query_embedder("")
        print(f"## Warm query latency ({len(questions)} dev questions, k=10, whole search call; ")
        print(f"query vectors by {type(embedder).__name__}, as `qa serve` and `qa ask` use)\n")
        print("\n".join(bench_latency(index, embedder, [q["question"] for q in questions])) + "\n")
        print(f"Load average after: {os.getloadavg()[0]:.2f}")
        return 0
    (embedder, load_s) = timed(get_embedder, "")
    print(f"Model: {embedder.name}, loaded in {load_s:.1f} s\n")
    print("## Index\n")
    rows, searcher = bench_index(args.corpus, embedder)
    print("\n".join(rows) + "\n")

    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    if not args.skip_latency:
        print(f"## Warm query latency ({len(questions)} dev questions, k=10, whole search call)\n")
        print("\n".join(bench_latency(searcher.index, embedder, [q["question"] for q in questions])) + "\n")
    from quality import quality_report  # bench/ is on sys.path when run as a script

    nfcorpus = None if args.skip_nfcorpus else args.nfcorpus
    print("\n".join(quality_report(searcher.index, embedder, args.questions, nfcorpus)))
    multilingual = ROOT / "tests" / "data" / "questions-multilingual.jsonl"
    if multilingual.exists():
        print("\n".join(["", *bench_languages(searcher.index, embedder, multilingual)]))
    if args.compare_models:
        print("\n## First stage: embedding models under the reranker (dev questions)\n")
        print("\n".join(bench_first_stage(args.corpus, args.questions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
