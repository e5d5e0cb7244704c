"""Evaluation: metric counting on hand-made runs, a tiny BEIR folder, and `qa eval --questions`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qa.corpus.documents import LoadResult
from qa.evaluation import (
    METRICS,
    EvaluationError,
    Question,
    Retrieved,
    evaluate,
    format_report,
    load_beir,
    load_questions,
    report_to_dict,
    score,
)
from qa.index.update import update_index
from qa.search.pipeline import Searcher
from qa.serve.cli import main
from tests.conftest import CORPUS

pytestmark = pytest.mark.slow

BEIR_DOCS = [
    (
        "D1",
        "Coffee consumption and Parkinson's disease risk",
        "In a cohort of 30,000 adults, drinking three or more cups of coffee a day was linked to a lower risk of Parkinson's disease.",
    ),
    (
        "D2",
        "Vitamin D supplements and hip fractures in older women",
        "Daily vitamin D and calcium did not reduce hip fractures among women over seventy in a randomised trial.",
    ),
    (
        "D3",
        "Sleep deprivation impairs memory consolidation",
        "Students kept awake for one night remembered fewer word pairs than students who slept normally.",
    ),
    (
        "D4",
        "Green tea catechins and liver enzymes",
        "High doses of green tea extract raised liver enzymes in some volunteers, suggesting a risk of liver injury.",
    ),
    (
        "D5",
        "Broccoli sprouts and sulforaphane",
        "Sulforaphane from broccoli sprouts increased the excretion of airborne pollutants such as benzene in a Chinese trial.",
    ),
]
BEIR_QUERIES = {
    "Q1": "Does drinking coffee protect against Parkinson's disease?",
    "Q2": "Does losing a night of sleep hurt memory?",
    # Judged relevant to the broccoli abstract only, which says nothing of the kind.
    "Q3": "Does coffee lower the risk of Parkinson's?",
    "Q9": "A query of another split, not judged here",
}
QRELS = [("Q1", "D1", 2), ("Q2", "D3", 2), ("Q2", "D2", 0), ("Q3", "D5", 2)]


@pytest.fixture
def beir_folder(tmp_path: Path) -> Path:
    """A BEIR folder like the official archives: qrels with a header line and CRLF endings."""
    folder = tmp_path / "tinybeir"
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for doc_id, title, text in BEIR_DOCS:
            fh.write(json.dumps({"_id": doc_id, "title": title, "text": text, "metadata": {}}) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as fh:
        for qid, text in BEIR_QUERIES.items():
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    rows = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t{g}" for q, d, g in QRELS)]
    (folder / "qrels" / "test.tsv").write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8"))
    return folder


def _q(qid: str, relevant: dict[str, int], kind: str = "natural") -> Question:
    return Question(qid, f"question {qid}", relevant, kind)


def test_counts_top1_hit5_and_not_covered_on_a_hand_made_run():
    questions = [
        _q("a", {"x.md": 2, "y.md": 1}),  # answered at rank 1
        _q("b", {"z.md": 2}, kind="keyword"),  # answered at rank 4: hit, not top1
        _q("c", {"w.md": 2}, kind="keyword"),  # missed, and wrongly flagged not covered
        _q("d", {}, kind="unanswerable"),  # rightly flagged not covered
        _q("e", {}, kind="unanswerable"),  # wrongly answered
    ]
    runs = [
        Retrieved((("x.md",), ("y.md",)), covered=True, ms=10),
        Retrieved((("p.md",), ("q.md",), ("r.md",), ("z.md",)), covered=True, ms=20),
        Retrieved((("p.md",),), covered=False, ms=30),
        Retrieved((("p.md",),), covered=False, ms=40),
        Retrieved((("p.md",),), covered=True, ms=50),
    ]
    report = score(questions, runs, mode="hybrid", k=10)
    m = report.metrics
    assert m["hit@5"] == pytest.approx(2 / 3)
    assert m["top1"] == pytest.approx(1 / 3)
    assert m["not_covered_ok"] == pytest.approx(1 / 2)
    assert m["not_covered_false"] == pytest.approx(1 / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 4 + 0) / 3)
    assert m["recall@10"] == pytest.approx((1 + 1 + 0) / 3)
    assert report.by_kind["keyword"]["hit@5"] == pytest.approx(1 / 2)
    assert report.by_kind["keyword"]["not_covered_ok"] is None
    assert report.by_kind["unanswerable"]["hit@5"] is None
    assert report.by_kind["unanswerable"]["not_covered_ok"] == pytest.approx(1 / 2)
    assert report.time_ms["mean"] == pytest.approx(30) and report.time_ms["p50"] == pytest.approx(30)


def test_ndcg_uses_exponential_gain_and_linear_is_kept_apart():
    # A grade-1 file ranked above a grade-2 one: ideal DCG is g2 + g1/log2(3).
    question = _q("a", {"two.md": 2, "one.md": 1})
    report = score([question], [Retrieved((("one.md",), ("two.md",)), covered=True)])
    log3 = 1.5849625007211562
    exponential = (1 + 3 / log3) / (3 + 1 / log3)
    linear = (1 + 2 / log3) / (2 + 1 / log3)
    assert report.metrics["ndcg@10"] == pytest.approx(exponential)
    assert report.metrics["ndcg@10_linear"] == pytest.approx(linear)


def test_a_study_counts_with_all_its_files():
    # The same study under two names: finding it under the other name is still a hit.
    question = _q("a", {"old-name.md": 2, "new-name.md": 2})
    run = Retrieved((("new-name.md", "old-name.md"), ("other.md",)), covered=True)
    assert run.files == ["new-name.md", "old-name.md", "other.md"]
    report = score([question], [run])
    assert report.metrics["top1"] == 1.0
    assert report.metrics["recall@10"] == 1.0
    assert report.metrics["ndcg@10"] == pytest.approx(1.0)


def test_per_question_scores_stay_with_their_question():
    # More than ten questions, so a sort of "q10" before "q2" would show.
    questions = [_q(f"id{i}", {f"d{i}.md": 2}) for i in range(12)]
    runs = [
        Retrieved(((f"d{i}.md",),) if i in (2, 10) else (("other.md",), (f"d{i}.md",)), covered=True)
        for i in range(12)
    ]
    report = score(questions, runs)
    assert [r.question.id for r in report.rows if r.scores["mrr@10"] == 1.0] == ["id2", "id10"]


def test_report_as_dict_and_table():
    questions = [_q("a", {"x.md": 2}), _q("b", {}, kind="unanswerable")]
    runs = [Retrieved((("x.md",),), covered=True, ms=5), Retrieved((), covered=False, ms=7)]
    report = score(questions, runs, mode="bm25", k=5)
    data = report_to_dict(report)
    assert set(METRICS) <= set(data) and data["by_kind"]["natural"]["questions"] == 1
    assert data["questions"] == 2 and data["answerable"] == 1 and data["mode"] == "bm25"
    assert data["per_question"][1]["not_covered_ok"] == 1.0
    json.dumps(data)
    table = format_report(report)
    assert "unanswerable" in table and "hit@5" in table and "p95" in table


def test_load_questions_reads_the_dev_format_and_names_bad_lines(tmp_path):
    good = tmp_path / "q.jsonl"
    good.write_text(
        '{"id": "1", "question": "x?", "relevant": {"a.md": 2, "b.md": 0}, "kind": "keyword"}\n\n'
        '{"id": "2", "question": "y?", "relevant": {}, "kind": "unanswerable"}\n',
        encoding="utf-8",
    )
    first, second = load_questions(good)
    assert first.relevant == {"a.md": 2} and first.kind == "keyword" and not second.answerable
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "question": "x?", "relevant": {}}\n{"id": "1"\n', encoding="utf-8")
    with pytest.raises(EvaluationError, match="line 2"):
        load_questions(bad)


def test_load_beir_reads_crlf_qrels_with_header(beir_folder):
    documents, questions = load_beir(beir_folder, "test")
    assert [d.doc_id for d in documents] == ["D1", "D2", "D3", "D4", "D5"]
    assert documents[0].title.startswith("Coffee") and "30,000" in documents[0].body
    assert [q.id for q in questions] == ["Q1", "Q2", "Q3"]
    assert questions[1].relevant == {"D3": 2}  # grade 0 dropped, no stray "\r"
    assert {q.kind for q in questions} == {"tinybeir"}
    with pytest.raises(EvaluationError, match="dev.tsv"):
        load_beir(beir_folder, "dev")


def test_beir_folder_indexed_and_evaluated(beir_folder, tmp_path, embedder):
    documents, questions = load_beir(beir_folder, "test")
    index, _ = update_index(tmp_path / "idx", LoadResult(tuple(documents), ()), embedder)
    assert set(index.documents) == {"D1", "D2", "D3", "D4", "D5"}
    report = evaluate(Searcher(index, embedder), questions, k=10, mode="hybrid")
    for metric in ("hit@5", "top1", "recall@10", "mrr@10", "ndcg@10"):
        assert 0.0 <= report.metrics[metric] <= 1.0
    rows = {r.question.id: r.scores for r in report.rows}
    assert rows["Q1"]["top1"] == 1.0 and rows["Q1"]["hit@5"] == 1.0
    assert rows["Q2"]["top1"] == 1.0
    assert rows["Q3"]["top1"] == 0.0 and rows["Q3"]["ndcg@10"] < rows["Q1"]["ndcg@10"]
    assert report.metrics["ndcg@10"] < 1.0 and report.metrics["not_covered_ok"] is None
    assert report.time_ms["p95"] >= report.time_ms["p50"] > 0


def test_cli_eval_questions_json(tmp_path, capsys, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    picks = [
        "2026-02-10_Choroid_plexus",
        "2025-11-22_Project_Update_Development_of_Dextro",
        "2025-08-11_Circ",
    ]
    names = []
    for prefix in picks:
        source = next(CORPUS.glob(prefix + "*"))
        shutil.copy(source, docs / source.name)
        names.append(source.name)
    questions = tmp_path / "questions.jsonl"
    rows = [
        {"id": "t1", "question": "choroid plexus long covid", "relevant": {names[0]: 2}, "kind": "keyword"},
        {
            "id": "t2",
            "question": "dextro-naltrexone neuroinflammation",
            "relevant": {names[1]: 2},
            "kind": "keyword",
        },
        {
            "id": "t3",
            "question": "What is the best treatment for plantar fasciitis?",
            "relevant": {},
            "kind": "unanswerable",
        },
    ]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    argv = ["eval", "--questions", str(questions), "--docs", str(docs), "--index", str(tmp_path / "idx")]
    assert main([*argv, "--json", "--quiet"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in (
        "hit@5",
        "top1",
        "recall@10",
        "mrr@10",
        "ndcg@10",
        "not_covered_ok",
        "not_covered_false",
        "by_kind",
    ):
        assert key in data
    assert set(data["by_kind"]) == {"keyword", "unanswerable"}
    assert data["hit@5"] == 1.0 and data["questions"] == 3

    assert main([*argv, "--quiet", "--mode", "bm25", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "mode bm25, k=2" in out and "keyword" in out


def test_cli_eval_reports_a_bad_question_file(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    assert (
        main(["eval", "--questions", str(bad), "--docs", str(tmp_path), "--index", str(tmp_path / "i")]) == 2
    )
    assert "line 1" in capsys.readouterr().err
