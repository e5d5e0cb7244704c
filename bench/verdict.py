"""Fit and measure the "not covered" verdict: a logistic regression over what the search measured.

Usage: python bench/verdict.py --index DIR [--cache FILE] [--write] [--false-target 0.02]

The questions (English, from tests/data/):
- `questions-answers.jsonl`: the 60 dev questions and the new ones, each with the summaries
  that answer it. Searched as they are, the answerable ones are "covered" examples; searched
  again with their answering summaries (and those summaries' other files) left out, each becomes
  a realistic near-topic question that nothing answers ("left out"). Its unanswerable ones stay
  unanswerable.
- `questions-unanswerable.jsonl`, written for this: everyday questions far from ME/CFS
  ("off-topic"), and ME/CFS or Long COVID questions about treatments no summary mentions
  ("near-topic", each checked with grep over the corpus).

Each question is searched once per case (features cached in `--cache`). The figures are out of
fold: five folds grouped by question, so a question's covered and left-out cases are never on
both sides. The threshold is the highest probability that keeps the share of answerable questions
flagged at or under `--false-target`. `--write` refits on everything and stores the verdict
beside the reranker (qa/models/data/verdict-cross-encoder.json): the one command that refits it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.index.store import Index  # noqa: E402
from qa.models.light import query_embedder  # noqa: E402
from qa.models.rerank import CROSS_ENCODER_CALIBRATION, CROSS_ENCODER_NAME  # noqa: E402
from qa.models.verdict import Verdict, verdict_path  # noqa: E402
from qa.search.stages import study_key  # noqa: E402
from qa.search.types import Filters, SearchSettings  # noqa: E402
from qa.search.verdict import FEATURES, named_unknown  # noqa: E402
from qa.serve.service import open_searcher  # noqa: E402

DATA = ROOT / "tests" / "data"
SETS = ("covered (dev)", "covered (new)", "left out", "unanswerable", "near-topic", "off-topic")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cases(index: Index) -> list[dict]:
    """Every (question, left-out summaries, label, set) to search."""
    study = {c.doc_id: study_key(c, index.documents) for c in index.chunks.values()}
    files: dict[str, set[str]] = {}
    for doc_id, key in study.items():
        files.setdefault(key, set()).add(doc_id)
    out = []
    for row in _rows(DATA / "questions-answers.jsonl") + _rows(DATA / "questions-unanswerable.jsonl"):
        if row.get("language", "en") != "en":
            continue
        base = {"id": row["id"], "question": row["question"]}
        if not row.get("relevant"):
            kind = {"everyday": "off-topic", "near-topic": "near-topic"}.get(row.get("kind"), "unanswerable")
            out.append({**base, "exclude": [], "label": 0, "set": kind})
            continue
        answering = sorted({f for d in row["relevant"] for f in files.get(study.get(d, d), {d})})
        source = "covered (dev)" if row.get("source") == "dev" else "covered (new)"
        out.append({**base, "exclude": [], "label": 1, "set": source})
        out.append({**base, "exclude": answering, "label": 0, "set": "left out"})
    return out


def collect(index_dir: Path, cache: Path | None) -> list[dict]:
    """Search every case (or read the cache) and record the features and the hand-set rules' call."""
    done = {(r["id"], r["set"]): r for r in _rows(cache)} if cache and cache.exists() else {}
    index = Index.load(index_dir)
    searcher = open_searcher(index, query_embedder(""), SearchSettings(multilingual=False))
    searcher.reranker.verdict = None  # record the hand-set rules' verdict beside the features
    rows = []
    for case in cases(index):
        if (case["id"], case["set"]) in done:
            rows.append(done[(case["id"], case["set"])])
            continue
        answer = searcher.search(case["question"], k=5, filters=Filters(exclude=tuple(case["exclude"])))
        row = {**case, "values": answer.evidence, "rules": answer.covered}
        rows.append(row)
        if cache:
            with cache.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
    return rows


#: The features the verdict reads, chosen by the out-of-fold figures: the best reranker score,
#: the best dense similarity, the rarity-weighted share of the question's words in the best
#: passages, and whether it names something no summary uses. The other gathered features (gap,
#: top3, above, unknown, length) added nothing out of fold, and "unknown" took the wrong sign
#: (paraphrases use everyday words the summaries never do).
CHOSEN = ("best", "dense", "words", "names")


def _matrix(rows: list[dict], features: tuple[str, ...]) -> np.ndarray:
    return np.asarray([[r["values"][name] for name in features] for r in rows], dtype=float)


def fit(rows: list[dict], features: tuple[str, ...], c: float = 1.0):  # noqa: ANN201
    """A logistic regression on standardised features (sklearn), and its scaler."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = _matrix(rows, features), np.asarray([r["label"] for r in rows])
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=c, max_iter=1000).fit(scaler.transform(x), y)
    return scaler, model


def out_of_fold(rows: list[dict], features: tuple[str, ...], c: float = 1.0, folds: int = 5) -> np.ndarray:
    """Each case's probability from a model fitted without its question (grouped k-fold)."""
    from sklearn.model_selection import GroupKFold

    x = _matrix(rows, features)
    groups = [r["id"] for r in rows]
    y = np.asarray([r["label"] for r in rows])
    probability = np.zeros(len(rows))
    for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
        scaler, model = fit([rows[i] for i in train], features, c)
        probability[test] = model.predict_proba(scaler.transform(x[test]))[:, 1]
    return probability


def by_rule(rows: list[dict]) -> list[bool]:
    """The cases the names rule flags whatever the probability (qa/search/verdict.py `named_unknown`)."""
    return [named_unknown(r["values"], CROSS_ENCODER_CALIBRATION.certain) for r in rows]


def choose_threshold(rows: list[dict], probability: np.ndarray, false_target: float) -> float:
    """The highest threshold that flags at most `false_target` of the answerable cases (rule included)."""
    rule = by_rule(rows)
    answerable = [r["label"] == 1 for r in rows]
    left = np.sort(probability[[a and not f for a, f in zip(answerable, rule)]])
    allowed = int(np.floor(false_target * sum(answerable))) - sum(a and f for a, f in zip(answerable, rule))
    # Flag the `allowed` lowest answerable cases at most: the threshold sits just above them.
    return float(left[max(allowed, 0)]) if max(allowed, 0) < len(left) else 1.0


def table(rows: list[dict], flagged: list[bool], rules: list[bool]) -> list[str]:
    """Share flagged "not covered" per set: by the fitted verdict and by the hand-set rules."""
    lines = [
        "| set | questions | flagged (fitted, out of fold) | flagged (hand-set rules) |",
        "|---|---:|---:|---:|",
    ]
    for name in SETS:
        chosen = [i for i, r in enumerate(rows) if r["set"] == name]
        if chosen:
            got = sum(flagged[i] for i in chosen) / len(chosen)
            old = sum(not rules[i] for i in chosen) / len(chosen)
            lines.append(f"| {name} | {len(chosen)} | {got:.3f} | {old:.3f} |")
    return lines


def named(verdict: Verdict, index_dir: Path) -> list[str]:
    """The issue's named questions, searched as the app does, with the new verdict."""
    index = Index.load(index_dir)
    searcher = open_searcher(index, query_embedder(""), SearchSettings())
    searcher.reranker.verdict = verdict
    lines = ["| question | covered | probability | reason | first study |", "|---|---|---:|---|---|"]
    for question in (
        "Hilft niedrig dosiertes Naltrexon bei Fatigue?",
        "What is the survival rate for pancreatic cancer?",
        "Does hydroxychloroquine help long covid?",
        "LDN",
        "POTS",
        "MCAS",
        "Does pacing help?",
        "What helps with post-exertional malaise?",
    ):
        a = searcher.search(question, k=5)
        p = "" if a.coverage is None else f"{a.coverage:.3f}"
        first = a.studies[0].citation.title[:60] if a.studies else ""
        lines.append(f"| {question} | {a.covered} | {p} | {a.reason} | {first} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="an index of ../shared/corpus/summaries")
    parser.add_argument("--cache", type=Path, help="JSONL of searched cases, reused and extended")
    parser.add_argument("--false-target", type=float, default=0.02, help="answerable share flagged at most")
    parser.add_argument("-C", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument(
        "--features", default=",".join(CHOSEN), help=f"comma-separated, of: {', '.join(FEATURES)}"
    )
    parser.add_argument("--write", action="store_true", help="refit on everything and store the verdict")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = collect(args.index, args.cache)
    features = tuple(args.features.split(","))
    probability = out_of_fold(rows, features, args.C)
    threshold = choose_threshold(rows, probability, args.false_target)
    flagged = [bool(p < threshold) or f for p, f in zip(probability, by_rule(rows))]
    rules = [bool(r["rules"]) for r in rows]
    print('# The "not covered" verdict: fitted vs hand-set\n')
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}; load average {os.getloadavg()[0]:.1f}\n"
    )
    print(f"Threshold (out of fold, false target {args.false_target}): {threshold:.3f}\n")
    lines = table(rows, flagged, rules)
    print("\n".join(lines))
    scaler, model = fit(rows, features, args.C)
    verdict = Verdict(
        reranker=CROSS_ENCODER_NAME,
        features=features,
        mean=tuple(float(v) for v in scaler.mean_),
        scale=tuple(float(v) for v in scaler.scale_),
        weights=tuple(float(v) for v in model.coef_[0]),
        bias=float(model.intercept_[0]),
        threshold=threshold,
        fitted={
            "date": date.today().isoformat(),
            "command": "python bench/verdict.py --index DIR --write",
            "cases": {name: sum(r["set"] == name for r in rows) for name in SETS},
            "C": args.C,
            "false_target": args.false_target,
            "out_of_fold": lines,
        },
    )
    print(
        "\nWeights (standardised features): "
        + ", ".join(f"{n} {w:+.2f}" for n, w in zip(features, verdict.weights))
    )
    if args.write:
        verdict.save(verdict_path("cross-encoder"))
        print(f"\nWritten: {verdict_path('cross-encoder').relative_to(ROOT)}")
    print("\n## Named questions (fitted on everything)\n")
    print("\n".join(named(verdict, args.index)))
    print(f"\n{len(rows)} cases in {time.perf_counter() - start:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
