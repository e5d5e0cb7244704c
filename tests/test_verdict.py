"""The fitted "not covered" verdict: its evidence, its reasons, its storage, and the searcher using it."""

from __future__ import annotations

import numpy as np
import pytest

from qa.models.rerank import CROSS_ENCODER_CALIBRATION
from qa.models.verdict import Verdict, load_verdict, verdict_path
from qa.search.pipeline import Searcher
from qa.search.types import Filters, SearchSettings
from qa.search.verdict import FEATURES, Evidence, judge

#: A verdict that only reads the best reranker score: covered from a logit of 0 on.
ONLY_BEST = Verdict(
    reranker="word",
    features=FEATURES,
    mean=tuple(0.0 for _ in FEATURES),
    scale=tuple(1.0 for _ in FEATURES),
    weights=tuple(1.0 if name == "best" else 0.0 for name in FEATURES),
    bias=0.0,
    threshold=0.5,
)


class WordReranker:
    """Scores 10 for a passage with the word, -10 without; judged by the verdict given."""

    name = "word"
    calibration = CROSS_ENCODER_CALIBRATION

    def __init__(self, word: str, verdict: Verdict | None) -> None:
        self.word, self.verdict = word, verdict

    def score(self, question, passages):
        return np.array([10.0 if self.word in p.lower() else -10.0 for p in passages], dtype=np.float32)


@pytest.fixture
def index(three_studies):
    return three_studies


def _searcher(index, fake_embedder, word: str, verdict: Verdict | None = ONLY_BEST) -> Searcher:
    settings = SearchSettings(multilingual=False, digest_studies=0)
    return Searcher(index, fake_embedder, settings, reranker=WordReranker(word, verdict))


def test_the_verdict_decides_after_the_reranker_and_says_how_likely(index, fake_embedder):
    searcher = _searcher(index, fake_embedder, "naltrexone")
    answer = searcher.search("Does naltrexone ease pain?", k=2)
    assert answer.covered and answer.coverage == pytest.approx(1.0, abs=1e-4)
    assert answer.evidence["best"] == 10.0 and answer.settings["verdict"]["threshold"] == 0.5
    assert set(answer.evidence) == set(FEATURES)


def test_leaving_the_answer_out_turns_a_question_unanswered(index, fake_embedder):
    searcher = _searcher(index, fake_embedder, "naltrexone")
    answer = searcher.search("Does naltrexone ease pain?", k=2, filters=Filters(exclude=("ldn.md",)))
    assert "ldn.md" not in [s.doc_id for s in answer.studies]
    assert not answer.covered and answer.coverage < 0.01
    # Left out, no summary that could answer uses the word: the reason names it.
    assert answer.evidence["unknown"] > 0 and answer.reason == "No summary mentions naltrexone."


def test_a_word_the_corpus_never_uses_counts_against_the_question(index, fake_embedder):
    searcher = _searcher(index, fake_embedder, "zorblatine")
    answer = searcher.search("Does zorblatine reduce crashes?", k=2)
    assert not answer.covered
    assert 0 < answer.evidence["unknown"] < 1 and answer.evidence["words"] < 1
    assert answer.reason == "No summary mentions zorblatine."


def test_without_a_fitted_verdict_the_hand_set_rules_judge(index, fake_embedder):
    answer = _searcher(index, fake_embedder, "naltrexone", verdict=None).search("Does naltrexone ease pain?")
    assert answer.covered and answer.coverage is None and "verdict" not in answer.settings


def test_the_reason_names_what_decided():
    low = {name: 0.0 for name in FEATURES} | {"best": -5.0}
    assert judge(Evidence(low, ("knee",), ("knee",)), ONLY_BEST, 6.0)[1] == "No summary mentions knee."
    reason = judge(Evidence(low, ("knee", "sprained"), ()), ONLY_BEST, 6.0)[1]
    assert reason == "The closest summaries do not mention knee or sprained."
    assert judge(Evidence(low), ONLY_BEST, 6.0)[1].startswith("No passage answers this closely")
    covered, reason, probability = judge(Evidence(low | {"best": 3.0}, ("knee",)), ONLY_BEST, 6.0)
    assert covered and reason == "" and probability == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_a_verdict_is_stored_and_read_only_for_its_own_reranker(tmp_path):
    path = tmp_path / "v.json"
    ONLY_BEST.save(path)
    assert Verdict.load(path) == ONLY_BEST


def test_the_bundled_verdict_belongs_to_the_bundled_reranker():
    from qa.models.rerank import CROSS_ENCODER_NAME

    stored = Verdict.load(verdict_path("cross-encoder"))
    assert stored.reranker == CROSS_ENCODER_NAME and set(stored.features) <= set(FEATURES)
    assert 0 < stored.threshold < 1 and load_verdict("cross-encoder", "another model") is None


def test_a_name_no_summary_uses_decides_unless_the_reranker_is_certain():
    named = {name: 0.0 for name in FEATURES} | {"best": 4.0, "names": 1.0}
    covered, reason, probability = judge(Evidence(named, ("zorblatine",), ("zorblatine",)), ONLY_BEST, 6.0)
    assert not covered and probability > 0.9 and reason == "No summary mentions zorblatine."
    assert judge(Evidence(named | {"best": 7.0}), ONLY_BEST, 6.0)[0], "all but certain: covered"
