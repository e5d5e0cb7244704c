"""Retrieval quality for the benchmark: dev questions per mode, and NFCorpus (BEIR) test."""

from __future__ import annotations

import time
from pathlib import Path

from qa.documents import LoadResult
from qa.evaluation import evaluate, load_beir, load_questions
from qa.index import update_index
from qa.search import MODES, Searcher

ROOT = Path(__file__).resolve().parents[1]
HEAD = ["hit@5", "top1", "recall@10", "mrr@10", "ndcg@10", "not_covered_ok", "not_covered_false"]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def dev_rows(searcher: Searcher, questions_path: Path) -> list[str]:
    """Dev-question metrics for each retrieval mode, then hybrid per kind."""
    questions = load_questions(questions_path)
    rows = [
        f"## Dev questions ({len(questions)}, study level, k=10)\n",
        "| mode | " + " | ".join(HEAD) + " | p50 ms |",
        "|---|" + "---:|" * (len(HEAD) + 1),
    ]
    hybrid = None
    for mode in MODES:
        report = evaluate(searcher, questions, k=10, mode=mode)
        hybrid = report if mode == "hybrid" else hybrid
        m = report.metrics
        rows.append(
            f"| {mode} | " + " | ".join(_fmt(m[h]) for h in HEAD) + f" | {report.time_ms['p50']:.1f} |"
        )
    rows += ["", "Hybrid by kind:", "", "| kind | " + " | ".join(HEAD) + " |", "|---|" + "---:|" * len(HEAD)]
    for kind, m in sorted(hybrid.by_kind.items()):
        rows.append(f"| {kind} | " + " | ".join(_fmt(m[h]) for h in HEAD) + " |")
    return rows


def nfcorpus_rows(embedder, folder: Path) -> list[str]:
    """NFCorpus test nDCG@10 per mode (index built once into index-beir/nfcorpus)."""
    documents, questions = load_beir(folder, "test")
    start = time.perf_counter()
    index, report = update_index(
        ROOT / "index-beir" / folder.name, LoadResult(tuple(documents), ()), embedder
    )
    built = time.perf_counter() - start
    searcher = Searcher(index, embedder)
    rows = [
        f"## NFCorpus test ({len(questions)} queries, {len(documents)} abstracts; "
        f"index {'built' if report.embedded_chunks else 'reused'} in {built:.0f} s)\n",
        "| mode | nDCG@10 (gain = grade, as BEIR/MTEB) | nDCG@10 (2^grade-1) | recall@10 | p50 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        r = evaluate(searcher, questions, k=10, mode=mode)
        m = r.metrics
        rows.append(
            f"| {mode} | {_fmt(m['ndcg@10_linear'])} | {_fmt(m['ndcg@10'])} | {_fmt(m['recall@10'])} | "
            f"{r.time_ms['p50']:.1f} |"
        )
    return rows


def quality_report(searcher: Searcher, questions_path: Path, nfcorpus: Path | None) -> list[str]:
    """All quality sections as Markdown lines."""
    rows = dev_rows(searcher, questions_path)
    if nfcorpus and (nfcorpus / "corpus.jsonl").exists():
        rows += [""] + nfcorpus_rows(searcher.embedder, nfcorpus)
    return rows
