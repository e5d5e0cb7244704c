"""The digest stage: which sentences are quoted and marked, with a reranker that scores by keyword.

The real cross-encoder's choices on real questions are measured by bench/digest.py; the
named cases with the real models are at the end (full lane).
"""

from __future__ import annotations

import numpy as np
import pytest

from qa.corpus.chunking import Chunk
from qa.corpus.documents import Citation
from qa.models.rerank import Calibration
from qa.present.highlight import highlight_answer
from qa.present.view import answer_view, view_to_dict
from qa.search.digest import candidates, choose, quote
from qa.search.types import Answer, Passage, StudyHit
from tests.conftest import FakeEmbedder

FINDINGS = "What has been found?"
SETUP = "How was it researched?"


class KeywordReranker:
    """Scores 5 for a sentence holding the keyword, -5 otherwise: which sentence answers is known."""

    name = "keyword"
    calibration = Calibration("test logit", floor=-8, unsure=0, certain=6, answers=0.0)

    def __init__(self, keyword: str) -> None:
        self.keyword = keyword
        self.read: list[str] = []

    def score(self, question: str, passages: list[str]) -> np.ndarray:
        self.read += passages
        return np.asarray([5.0 if self.keyword in p else -5.0 for p in passages], dtype=np.float32)


def study(rank: int, *passages: tuple[str, str]) -> StudyHit:
    cite = Citation(label=f"Study {rank} (2025)", title=f"Study {rank}")
    shown = tuple(
        Passage(Chunk(f"s{rank}.md#{n}", f"s{rank}.md", section, text, text, cite), 0.03)
        for n, (section, text) in enumerate(passages)
    )
    return StudyHit(rank, f"s{rank}.md", cite, 0.03, shown)


STUDIES = (
    study(
        1,
        (SETUP, "Patients took pacing advice for twelve weeks in this trial."),
        (FINDINGS, "Fatigue scores were similar in both groups. Pacing reduced crashes in most patients."),
    ),
    study(2, (FINDINGS, "The cohort was followed for years. This showed that pacing helped many people.")),
    study(3, (FINDINGS, "Nothing in this passage answers the question at all.")),
    study(4, (FINDINGS, "Pacing lowered symptom flares in adults with long covid.")),
    study(5, (FINDINGS, "Pacing helped teenagers return to school part time.")),
)


def test_a_research_setup_sentence_is_never_a_candidate_and_a_this_sentence_brings_its_antecedent():
    found = candidates(STUDIES, 5)
    texts = [c.text for c in found]
    assert not any("twelve weeks" in t for t in texts), "How was it researched? is never quoted"
    assert "The cohort was followed for years. This showed that pacing helped many people." in texts
    assert all(c.section == FINDINGS for c in found)
    assert {c.rank for c in candidates(STUDIES, 2)} == {1, 2}


def test_one_quote_a_study_at_most_three_best_first_and_none_when_nothing_answers():
    found = candidates(STUDIES, 5)
    scores = [float(len(c.text)) if "acing" in c.text else -3.0 for c in found]
    quotes = choose(found, scores, threshold=0.0)
    assert len(quotes) == 3 and len({q.rank for q in quotes}) == 3
    assert [q.score for q in quotes] == sorted((q.score for q in quotes), reverse=True)
    assert 3 not in {q.rank for q in quotes}, "a study with no answering sentence is not quoted"
    assert choose(found, [-1.0] * len(found), threshold=0.0) == ()


def test_quoted_sentences_answer_and_the_cards_marks_follow_the_same_scores():
    reranker = KeywordReranker("Pacing reduced crashes")
    quotes, marks = quote("Does pacing help?", STUDIES[:1], reranker, 5)
    assert [q.text for q in quotes] == ["Pacing reduced crashes in most patients."]
    assert not any("twelve weeks" in r for r in reranker.read), "the setup passage is not even read"
    # Each sentence is read after its study's title (what it is about), and quoted without it.
    assert "Study 1. Pacing reduced crashes in most patients." in reranker.read
    assert marks[(1, 1)] == {0: (-5.0, False), 1: (5.0, True)}
    answer = Answer("Does pacing help?", STUDIES[:1], True, quoted=True, digest=quotes, marks=marks)
    highlights = highlight_answer(FakeEmbedder(), answer)
    assert [s.text for s in highlights[1][1] if s.marked] == ["Pacing reduced crashes in most patients."]
    data = view_to_dict(answer_view(answer, highlights))
    assert data["digest"] == [
        {
            "rank": 1,
            "doc_id": "s1.md",
            "section": FINDINGS,
            "text": "Pacing reduced crashes in most patients.",
        }
    ]
    assert data["studies"][0]["passages"][1]["highlights"] == ["Pacing reduced crashes in most patients."]


def test_nothing_that_answers_gives_no_digest_and_no_marks():
    quotes, marks = quote("Does pacing help?", STUDIES, KeywordReranker("zorblatine"), 5)
    assert quotes == ()
    answer = Answer("Does pacing help?", STUDIES, True, quoted=True, digest=quotes, marks=marks)
    assert answer_view(answer, highlight_answer(FakeEmbedder(), answer)).digest == ()
    assert not any(s.marked for p in highlight_answer(FakeEmbedder(), answer)[2] for s in p)


@pytest.mark.slow
def test_the_real_reranker_quotes_a_finding_not_background(tmp_path, embedder):
    """With the bundled cross-encoder: a sentence that answers is quoted, a background one is not."""
    from qa.models.rerank import get_reranker

    hit = study(
        1,
        (
            FINDINGS,
            "ME/CFS lacks a curative treatment and many patients are housebound. "
            "Low-dose naltrexone reduced fatigue and pain in most patients who took it.",
        ),
    )
    quotes, _ = quote("Does low-dose naltrexone help fatigue?", (hit,), get_reranker(), 5)
    assert [q.text for q in quotes] == [
        "Low-dose naltrexone reduced fatigue and pain in most patients who took it."
    ]


def test_a_study_the_reranker_scored_below_even_odds_is_not_read_and_gets_no_marks():
    low = StudyHit(6, "s6.md", STUDIES[3].citation, -3.0, STUDIES[3].passages)
    reranker = KeywordReranker("Pacing")
    quotes, marks = quote("Does pacing help?", (*STUDIES[:1], low), reranker, 5)
    assert not any("long covid" in r for r in reranker.read), "the low study's sentences are not read"
    assert marks[(6, 0)] == {} and {q.rank for q in quotes} == {1}
