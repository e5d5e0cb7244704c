"""Retrieval quality for the benchmark: dev questions per configuration, and NFCorpus (BEIR) test."""

from __future__ import annotations

import time
from pathlib import Path

from qa.corpus.documents import LoadResult
from qa.evaluation import evaluate, load_beir, load_questions
from qa.index.store import Index
from qa.index.update import update_index
from qa.search.pipeline import Searcher
from qa.search.stages import is_background
from qa.search.types import SearchSettings

ROOT = Path(__file__).resolve().parents[1]
HEAD = ["hit@5", "top1", "recall@10", "mrr@10", "ndcg@10", "not_covered_ok", "not_covered_false"]

#: The configurations compared in one run: the default first.
CONFIGS: list[tuple[str, SearchSettings]] = [
    ("hybrid + rerank (default)", SearchSettings()),
    ("hybrid", SearchSettings(rerank="none")),
    ("dense", SearchSettings(mode="dense", rerank="none")),
    ("bm25", SearchSettings(mode="bm25", rerank="none")),
]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def background_share(searcher: Searcher, questions) -> float:
    """Share of first passages shown that come from a what/why/how-was-it-researched section."""
    firsts = []
    for q in questions:
        if q.answerable:
            answer = searcher.search(q.question, k=1)
            if answer.studies:
                firsts.append(is_background(answer.studies[0].passages[0].chunk.section))
    return sum(firsts) / max(len(firsts), 1)


def dev_rows(index: Index, embedder, questions_path: Path, configs=CONFIGS) -> list[str]:
    """Dev-question metrics for each configuration, then the default per kind."""
    questions = load_questions(questions_path)
    rows = [
        f"## Dev questions ({len(questions)}, study level, k=10)\n",
        "| configuration | "
        + " | ".join(HEAD)
        + " | first passage from a research-setup section | p50 ms | p95 ms |",
        "|---|" + "---:|" * (len(HEAD) + 3),
    ]
    default = None
    for name, settings in configs:
        searcher = Searcher(index, embedder, settings)
        report = evaluate(searcher, questions, k=10, mode=settings.mode)
        default = default or report
        m = report.metrics
        rows.append(
            f"| {name} | "
            + " | ".join(_fmt(m[h]) for h in HEAD)
            + f" | {background_share(searcher, questions):.2f} | {report.time_ms['p50']:.1f} | {report.time_ms['p95']:.1f} |"
        )
    rows += [
        "",
        f"{configs[0][0]} by kind:",
        "",
        "| kind | " + " | ".join(HEAD) + " |",
        "|---|" + "---:|" * len(HEAD),
    ]
    for kind, m in sorted(default.by_kind.items()):
        rows.append(f"| {kind} | " + " | ".join(_fmt(m[h]) for h in HEAD) + " |")
    return rows


def nfcorpus_rows(embedder, folder: Path, configs=CONFIGS) -> list[str]:
    """NFCorpus test nDCG@10 per configuration (index built once into index-beir/nfcorpus)."""
    documents, questions = load_beir(folder, "test")
    start = time.perf_counter()
    index, report = update_index(
        ROOT / "index-beir" / folder.name, LoadResult(tuple(documents), ()), embedder
    )
    built = time.perf_counter() - start
    rows = [
        f"## NFCorpus test ({len(questions)} queries, {len(documents)} abstracts; "
        f"index {'built' if report.embedded_chunks else 'reused'} in {built:.0f} s)\n",
        "| configuration | nDCG@10 (gain = grade, as BEIR/MTEB) | nDCG@10 (2^grade-1) | recall@10 | p50 ms | p95 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, settings in configs:
        r = evaluate(Searcher(index, embedder, settings), questions, k=10, mode=settings.mode)
        m = r.metrics
        rows.append(
            f"| {name} | {_fmt(m['ndcg@10_linear'])} | {_fmt(m['ndcg@10'])} | {_fmt(m['recall@10'])} | "
            f"{r.time_ms['p50']:.1f} | {r.time_ms['p95']:.1f} |"
        )
    return rows


def quality_report(index: Index, embedder, questions_path: Path, nfcorpus: Path | None) -> list[str]:
    """All quality sections as Markdown lines."""
    rows = dev_rows(index, embedder, questions_path)
    if nfcorpus and (nfcorpus / "corpus.jsonl").exists():
        rows += [""] + nfcorpus_rows(embedder, nfcorpus)
    return rows
