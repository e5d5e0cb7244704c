"""Digest quality on a judged set: does each "In short" quote answer the question?

Usage: python bench/digest.py --index DIR [--answers FILE] [-k 5] [--digest-studies N] [--sweep]

Each question of the set (tests/data/questions-answers.jsonl) lists the sentences of the corpus
that answer it, written down by reading the summaries. A quote answers when it is one of them
(compared without Markdown, case or spacing; a quote that carries the sentence before it, or a
judged sentence inside a longer quote, counts). Prints one Markdown report: digest precision
(share of quotes that answer), the share of answerable questions with a digest whose first quote
answers, answerable questions left without a digest, unanswerable ones given one, and the time
per question. `--digest-studies 0` gives the digest as it was before the reranker read
sentences (the bi-encoder's marks); `--sweep` prints the figures for a range of thresholds of
the reranker's `answers` calibration, for choosing it on the dev questions (the new ones check it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.index.store import Index  # noqa: E402
from qa.models.light import query_embedder  # noqa: E402
from qa.present.highlight import highlight_answer  # noqa: E402
from qa.present.view import answer_view  # noqa: E402
from qa.search.digest import candidates, choose, reading  # noqa: E402
from qa.search.types import SearchSettings  # noqa: E402
from qa.serve.service import open_searcher  # noqa: E402


def normalise(text: str) -> str:
    """Text without Markdown marks, case, spacing or closing punctuation, for comparing sentences."""
    text = re.sub(r"[*_`>#]+", "", text)
    text = re.sub(r"\s+", " ", text).strip().lower()
    return text.rstrip(".!?:;, ")


def answers(quote: str, judged: list[str]) -> bool:
    """Whether a quote is (or holds, or is held by) one of the judged answering sentences."""
    q = normalise(quote)
    return any(j and (q == j or j in q or (len(q) > 40 and q in j)) for j in judged)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    at = (len(ordered) - 1) * p / 100
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _judged(row: dict) -> list[str]:
    return [normalise(s) for a in row.get("answers", []) for s in a["sentences"]]


def _count(groups: dict, row: dict, quotes: list[str], judged: list[str], misses: list[str] | None) -> None:
    """Add one question's quotes to the figures of "all" and of its source."""
    for name in ("all", row.get("source", "?")):
        g = groups.setdefault(
            name, {"quotes": 0, "good": 0, "covered": 0, "first": 0, "none": 0, "un": 0, "un_quoted": 0}
        )
        if not row.get("relevant"):
            g["un"] += 1
            g["un_quoted"] += bool(quotes)
            continue
        good = [answers(q, judged) for q in quotes]
        g["quotes"] += len(quotes)
        g["good"] += sum(good)
        if quotes:
            g["covered"] += 1
            g["first"] += good[0]
        else:
            g["none"] += 1
        if name == "all" and misses is not None:
            misses += [f"- {row['id']}: {q[:90]}" for q, ok in zip(quotes, good) if not ok]


def _table(groups: dict) -> list[str]:
    lines = [
        "| questions | quotes | precision | first quote answers | answerable without a digest "
        "| unanswerable with a digest |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, g in sorted(groups.items(), key=lambda item: item[0] != "all"):
        precision = g["good"] / g["quotes"] if g["quotes"] else float("nan")
        first = g["first"] / g["covered"] if g["covered"] else float("nan")
        lines.append(
            f"| {name} | {g['quotes']} | {precision:.3f} | {first:.3f} ({g['first']}/{g['covered']}) | "
            f"{g['none']} | {g['un_quoted']} of {g['un']} |"
        )
    return lines


class TimedReranker:
    """The searcher's reranker, timed: the milliseconds its calls took since the last `take`."""

    def __init__(self, reranker) -> None:  # noqa: ANN001
        self.reranker, self.ms = reranker, 0.0
        self.name, self.calibration, self.verdict = reranker.name, reranker.calibration, reranker.verdict

    def score(self, question: str, passages: list[str]):  # noqa: ANN201
        start = time.perf_counter()
        try:
            return self.reranker.score(question, passages)
        finally:
            self.ms += (time.perf_counter() - start) * 1000

    def take(self) -> float:
        ms, self.ms = self.ms, 0.0
        return ms


def run(index_dir: Path, answers_path: Path, k: int, digest_studies: int) -> list[str]:
    """The report's lines: the figures, the time per question, and each quote judged not to answer."""
    index = Index.load(index_dir)
    embedder = query_embedder("")
    searcher = open_searcher(index, embedder, SearchSettings(digest_studies=digest_studies))
    searcher.reranker = timed = TimedReranker(searcher.reranker)
    groups: dict[str, dict] = {}
    times: list[float] = []
    reranking: list[float] = []
    misses: list[str] = []
    for row in _rows(answers_path):
        start = time.perf_counter()
        answer = searcher.search(row["question"], k=k)
        view = answer_view(answer, highlight_answer(embedder, answer, index.sentences))
        times.append((time.perf_counter() - start) * 1000)
        reranking.append(timed.take())
        _count(groups, row, [q.text for q in view.digest], _judged(row), misses)
    return [
        *_table(groups),
        "",
        f"Time per question (search, highlights, digest): p50 {percentile(times, 50):.0f} ms, "
        f"p95 {percentile(times, 95):.0f} ms, mean {statistics.mean(times):.0f} ms over {len(times)}.",
        f"Of which the reranker (passages and sentences): p50 {percentile(reranking, 50):.0f} ms, "
        f"p95 {percentile(reranking, 95):.0f} ms.",
        "",
        "Quotes judged not to answer (first 90 characters):",
        "",
        *misses,
    ]


def sweep(index_dir: Path, answers_path: Path, k: int, studies: int, thresholds: list[float]) -> list[str]:
    """The figures for each threshold of the reranker's `answers` calibration (sentences scored once)."""
    index = Index.load(index_dir)
    searcher = open_searcher(index, query_embedder(""), SearchSettings(digest_studies=studies))
    scored = []
    for row in _rows(answers_path):
        answer = searcher.search(row["question"], k=k)
        found = candidates(answer.studies, studies) if answer.quoted else []
        text = answer.searched or answer.question
        scores = (
            [float(s) for s in searcher.reranker.score(text, [reading(c) for c in found])] if found else []
        )
        scored.append((row, found, scores))
    lines = []
    for threshold in thresholds:
        groups: dict[str, dict] = {}
        for row, found, scores in scored:
            _count(groups, row, [q.text for q in choose(found, scores, threshold)], _judged(row), None)
        lines += [f"### threshold {threshold:+.1f}", "", *_table(groups), ""]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="an index of ../shared/corpus/summaries")
    parser.add_argument("--answers", type=Path, default=ROOT / "tests" / "data" / "questions-answers.jsonl")
    parser.add_argument("-k", "--k", type=int, default=5, help="studies per answer (the app's default: 5)")
    parser.add_argument(
        "--digest-studies",
        type=int,
        default=SearchSettings.digest_studies,
        help="studies whose sentences the reranker reads (0: the bi-encoder digest, as before)",
    )
    parser.add_argument("--sweep", action="store_true", help="figures for thresholds -4 to +6")
    args = parser.parse_args()
    print("# Digest: do the quoted sentences answer?\n")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}; load average {os.getloadavg()[0]:.1f}\n"
    )
    print(f"Digest studies: {args.digest_studies}; k = {args.k}; {args.answers.name}\n")
    if args.sweep:
        grid = [x / 2 for x in range(-8, 13)]
        print("\n".join(sweep(args.index, args.answers, args.k, args.digest_studies or 5, grid)))
    else:
        print("\n".join(run(args.index, args.answers, args.k, args.digest_studies)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
