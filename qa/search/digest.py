"""Quote: the sentences of the top studies that the reranker judges to answer the question.

The digest ("In short") quotes a sentence only when the cross-encoder, reading the question and
that sentence alone, scores it at or above its calibration's `answers` threshold: a sentence
that answers, not one that is merely about the topic (the bi-encoder's cosine, used before,
quoted background such as "ME/CFS lacks a curative treatment"). Candidates are the sentences of
the passages each top study shows, never from a research-setup section (What / Why / How was it
researched?); a sentence that opens with "This", "These", "It"… is read, and quoted, with the
sentence before it, so it never stands without what it refers to. At most one quote a study,
up to three, best first; none when nothing answers. The same scores mark the cards' sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.corpus.chunking import split_sentences
from qa.models.rerank import Reranker
from qa.search.quotes import Quote
from qa.search.stages import is_background
from qa.search.types import StudyHit

#: A sentence that cannot stand alone: it refers back to the one before.
_REFERS_BACK = re.compile(
    r"^(?:this|these|that|those|it|its|they|their|such|both|here|there|the latter|the former|"
    r"however|therefore|thus|hence|in addition|additionally|moreover|furthermore)\b",
    re.I,
)
#: Fewer words than this say too little to quote ("Results were mixed.").
MIN_WORDS = 5


@dataclass(frozen=True)
class Candidate:
    """A sentence a study shows, as quoted (with the sentence before when it refers back)."""

    rank: int
    doc_id: str
    passage: int  # which shown passage of the study
    sentence: int  # which sentence of that passage
    section: str
    text: str
    #: The study's title: the reranker reads it before the sentence (see `reading`).
    title: str = ""


def reading(candidate: Candidate) -> str:
    """What the reranker reads of a candidate: its study's title, then the sentence.

    Read alone, a sentence loses what it is about ("Symptoms improved in 60%."); with the title,
    as passages are reranked, the first quote answered in 0.84 of the judged questions instead
    of 0.70 (bench/digest.py, threshold 2).
    """
    return f"{candidate.title}. {candidate.text}" if candidate.title else candidate.text


def candidates(studies: tuple[StudyHit, ...] | list[StudyHit], top: int) -> list[Candidate]:
    """The quotable sentences of the shown passages of the first `top` studies."""
    found = []
    for study in studies[:top]:
        for n, passage in enumerate(study.passages):
            section = passage.chunk.section
            if is_background(section):
                continue
            sentences = split_sentences(passage.chunk.text) or [passage.chunk.text]
            for i, sentence in enumerate(sentences):
                if len(sentence.split()) < MIN_WORDS:
                    continue
                text = f"{sentences[i - 1]} {sentence}" if i and _REFERS_BACK.match(sentence) else sentence
                found.append(Candidate(study.rank, study.doc_id, n, i, section, text, study.citation.title))
    return found


def choose(found: list[Candidate], scores: list[float], threshold: float, top: int = 3) -> tuple[Quote, ...]:
    """The best-scoring candidate of each study at or above `threshold`, best first, at most `top`."""
    best: dict[int, tuple[float, Candidate]] = {}
    for candidate, score in zip(found, scores):
        if score >= threshold and (candidate.rank not in best or score > best[candidate.rank][0]):
            best[candidate.rank] = (score, candidate)
    ordered = sorted(best.values(), key=lambda item: -item[0])[:top]
    return tuple(Quote(c.rank, c.doc_id, c.section, c.text, round(s, 4)) for s, c in ordered)


#: Sentences marked on one passage at the most: a reader should see at a glance what answers.
MAX_MARKED = 2


def quote(
    question: str, studies: tuple[StudyHit, ...], reranker: Reranker, studies_read: int, top: int = 3
) -> tuple[tuple[Quote, ...], dict[tuple[int, int], dict[int, tuple[float, bool]]]]:
    """The digest's quotes, and per (study rank, shown passage) each scored sentence's
    (score, marked): marked when it answers, the best `MAX_MARKED` of a passage."""
    threshold = reranker.calibration.answers
    # A study whose best passage the reranker scored below even odds is not read sentence by
    # sentence: on the 114 judged questions one quote was lost (of 152), and the reranker's time
    # per question fell from 788 to 599 ms p50 (bench/digest.py). Its cards get no marks: the
    # reranker judged nothing there to answer.
    read = [s for s in studies[:studies_read] if s.score >= reranker.calibration.unsure]
    ranks = {s.rank for s in read}
    skipped = {
        (s.rank, n): {} for s in studies[:studies_read] if s.rank not in ranks for n in range(len(s.passages))
    }
    found = candidates(read, studies_read)
    if not found:
        return (), skipped
    scores = [float(s) for s in reranker.score(question, [reading(c) for c in found])]
    scored: dict[tuple[int, int], dict[int, float]] = {}
    for c, s in zip(found, scores):
        scored.setdefault((c.rank, c.passage), {})[c.sentence] = s
    marks: dict = dict(skipped)
    for key, by_sentence in scored.items():
        best = sorted((i for i, s in by_sentence.items() if s >= threshold), key=lambda i: -by_sentence[i])
        marks[key] = {i: (s, i in best[:MAX_MARKED]) for i, s in by_sentence.items()}
    return choose(found, scores, threshold, top), marks
