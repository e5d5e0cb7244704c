"""Retrieval on the real corpus with the real bundled model."""

from __future__ import annotations

import pytest

from qa.search.types import Filters

pytestmark = pytest.mark.slow


def _files(answer):
    return [s.doc_id for s in answer.studies]


def test_ldn_question_finds_an_ldn_summary(corpus_searcher):
    answer = corpus_searcher.search("Does low-dose naltrexone help ME/CFS?", k=5)
    texts = [
        " ".join(p.chunk.text for p in s.passages).lower() + s.citation.title.lower() for s in answer.studies
    ]
    assert any("naltrexone" in t or "ldn" in t for t in texts)
    assert answer.covered


def test_antiviral_question_cites_antiviral_studies(corpus_searcher):
    answer = corpus_searcher.search("Has any antiviral helped ME/CFS patients?", k=5)
    assert len(answer.studies) == 5
    joined = " ".join(p.chunk.text.lower() for s in answer.studies for p in s.passages)
    assert "antiviral" in joined or "valacyclovir" in joined
    for study in answer.studies:
        assert study.citation.label and study.citation.title and study.passages


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_every_mode_returns_ranked_studies(corpus_searcher, mode):
    answer = corpus_searcher.search("valacyclovir herpesvirus", k=3, mode=mode)
    assert [s.rank for s in answer.studies] == [1, 2, 3]
    scores = [s.score for s in answer.studies]
    assert scores == sorted(scores, reverse=True)


def test_same_study_under_two_files_is_shown_once(corpus_searcher):
    answer = corpus_searcher.search("GPCR autoantibodies symposium regulatory autoantibodies", k=10)
    dois = [s.citation.doi for s in answer.studies if s.citation.doi]
    assert len(dois) == len(set(dois))
    assert any(s.also for s in answer.studies if s.citation.doi == "10.1016/j.autrev.2025.103855")


def test_filters_limit_tags_and_dates(corpus_searcher):
    filters = Filters(tags=("Trial",), date_from="2025-01-01", date_to="2025-12-31")
    answer = corpus_searcher.search("treatment for fatigue", k=5, filters=filters)
    assert answer.studies
    for study in answer.studies:
        assert "Trial" in study.citation.tags
        assert "2025-01-01" <= study.citation.published <= "2025-12-31"


def test_question_no_summary_covers_is_flagged(corpus_searcher):
    answer = corpus_searcher.search("What is the best recipe for sourdough bread?", k=5)
    assert not answer.covered and answer.reason
    assert answer.studies  # the nearest passages are still shown, marked as such


def test_a_drug_no_summary_mentions_is_named_as_not_covered(corpus_searcher):
    answer = corpus_searcher.search("Does oseltamivir help long COVID patients?", k=5)
    assert not answer.covered and "oseltamivir" in answer.reason


def test_a_question_in_another_language_is_not_flagged_for_its_words(corpus_searcher):
    answer = corpus_searcher.search("Hilft niedrig dosiertes Naltrexon bei ME/CFS?", k=5)
    assert answer.covered
    assert any("naltrexone" in s.citation.title.lower() for s in answer.studies[:3])


# --- the stages with the real reranker (issue 7) -----------------------------------------


def _mentions(study, *words):
    text = (study.citation.title + " " + " ".join(p.chunk.text for p in study.passages)).lower()
    return any(w in text for w in words)


def test_the_reranker_puts_the_study_that_answers_near_the_top(corpus_searcher):
    antiviral = corpus_searcher.search("Has any antiviral helped ME/CFS patients?", k=5)
    assert any("Seton" in s.citation.label for s in antiviral.studies[:3])
    assert all(p.rerank is not None for p in antiviral.studies[0].passages)
    blood = corpus_searcher.search("Is there a blood test for ME/CFS?", k=5)
    assert any("Hunter" in s.citation.label for s in blood.studies[:3])


@pytest.mark.parametrize(
    ("word", "long"),
    [("LDN", "naltrexone"), ("POTS", "postural orthostatic"), ("MCAS", "mast cell")],
)
def test_an_acronym_alone_is_covered_with_a_study_about_it_first(corpus_searcher, word, long):
    answer = corpus_searcher.search(word, k=5)
    assert answer.covered, answer.reason
    assert long in answer.searched.lower()
    assert _mentions(answer.studies[0], word.lower(), long)


def test_typos_are_corrected_and_said(corpus_searcher):
    answer = corpus_searcher.search("does ldn hlp with brian fog", k=5)
    assert ("brian", "brain") in answer.corrections and ("hlp", "help") in answer.corrections
    assert "brain fog" in answer.searched and answer.covered
    assert _mentions(answer.studies[0], "naltrexone")


def test_a_drug_no_summary_mentions_is_not_covered_in_plain_words(corpus_searcher):
    answer = corpus_searcher.search("Does hydroxychloroquine help long covid?", k=5)
    assert not answer.covered
    assert answer.reason == "No summary mentions hydroxychloroquine."


def test_reranking_can_be_switched_off_by_a_setting(corpus_index, embedder):
    from qa.search.pipeline import Searcher
    from qa.search.types import SearchSettings

    searcher = Searcher(corpus_index, embedder, SearchSettings(rerank="none"))
    answer = searcher.search("Has any antiviral helped ME/CFS patients?", k=3)
    assert searcher.reranker is None and answer.settings["rerank"] == "none"
    assert all(p.rerank is None for s in answer.studies for p in s.passages)


class _HeldReranker:
    """A reranker that holds each call until released (to have searches running at once)."""

    name = "held"

    def __init__(self) -> None:
        import threading

        from qa.models.rerank import CROSS_ENCODER_CALIBRATION

        self.calibration = CROSS_ENCODER_CALIBRATION
        self.verdict = None
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def score(self, question, passages):
        import numpy as np

        self.entered.release()
        assert self.release.wait(30)
        return np.arange(len(passages), dtype=np.float32)


def test_reranker_is_skipped_while_the_process_is_busy_and_the_answer_says_so(corpus_index, embedder):
    from concurrent.futures import ThreadPoolExecutor

    from qa.search.pipeline import Searcher
    from qa.search.types import SearchSettings

    reranker = _HeldReranker()
    searcher = Searcher(corpus_index, embedder, SearchSettings(rerank_busy=2), reranker=reranker)
    question = "Does low-dose naltrexone help?"
    with ThreadPoolExecutor(3) as pool:
        running = [pool.submit(searcher.search, question) for _ in range(2)]
        for _ in running:  # both are inside the reranker now
            assert reranker.entered.acquire(timeout=30)
        busy = searcher.search(question)  # a third reader: the first-stage order stands
        forced = pool.submit(searcher.search, question, use_reranker=True)  # eval and bench
        assert reranker.entered.acquire(timeout=30)
        reranker.release.set()
        first = [f.result(timeout=30) for f in running]
        assert forced.result(timeout=30).reranked
    assert all(a.reranked and not a.rerank_skipped for a in first)
    assert not busy.reranked and busy.rerank_skipped == "busy" and busy.studies
    assert all(p.rerank is None for s in busy.studies for p in s.passages)
    alone = searcher.search(question)  # nobody else searching: reranked again
    assert alone.reranked and alone.studies[0].passages[0].rerank is not None
    never = Searcher(corpus_index, embedder, SearchSettings(rerank_busy=0), reranker=reranker)
    assert never.search(question).reranked


@pytest.mark.parametrize("question", ["🤒😴💊🧠", "?!?", "…"])
def test_a_question_without_words_gets_a_note_not_unrelated_studies(corpus_searcher, question):
    answer = corpus_searcher.search(question, k=5)
    assert answer.studies == () and not answer.covered
    assert "no words to search for" in answer.reason


# --- the fitted verdict (qa/search/verdict.py) on the real corpus ----------------------------

HUMIDIFIER = "2026-01-27_Chronic_Fatigue_Syndrome_Induced_by_Environmental_.md"


def test_leaving_the_answering_summary_out_turns_a_covered_question_not_covered(corpus_searcher):
    question = "humidifier disinfectant PHMG chronic fatigue"
    covered = corpus_searcher.search(question, k=5)
    assert covered.covered and covered.studies[0].doc_id == HUMIDIFIER and covered.coverage > 0.5
    left_out = corpus_searcher.search(question, k=5, filters=Filters(exclude=(HUMIDIFIER,)))
    assert HUMIDIFIER not in [s.doc_id for s in left_out.studies]
    assert not left_out.covered and left_out.coverage < 0.05 and left_out.reason


def test_an_everyday_question_far_from_the_summaries_is_not_covered(corpus_searcher):
    answer = corpus_searcher.search("What is the survival rate for pancreatic cancer?", k=5)
    assert not answer.covered and "pancreatic" in answer.reason
    assert answer.settings["verdict"]["threshold"] == corpus_searcher.reranker.verdict.threshold


def test_the_json_answer_carries_the_verdicts_probability(corpus_searcher):
    from qa.present.answer import answer_to_dict

    data = answer_to_dict(corpus_searcher.search("POTS", k=3))
    assert data["covered"] and 0.5 < data["coverage"] <= 1.0
    assert set(data["digest"][0]) == {"rank", "doc_id", "section", "text"}
