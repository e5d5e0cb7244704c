"""Sentence highlighting with the real model: the answering sentence is marked, nothing is invented."""

from __future__ import annotations

import pytest

from qa.present.highlight import highlight_many

pytestmark = pytest.mark.slow

PASSAGE = (
    "The study enrolled 82 adults at a clinic in Utah. "
    "Oxaloacetate improved cognitive function compared with the control group after 60 days. "
    "Participants wore activity trackers during the trial."
)


def test_the_sentence_that_answers_is_marked(embedder):
    [sentences] = highlight_many(embedder, "Did oxaloacetate improve cognition?", [PASSAGE])
    assert [s.text for s in sentences if s.marked] == [
        "Oxaloacetate improved cognitive function compared with the control group after 60 days."
    ]
    assert " ".join(s.text for s in sentences) == PASSAGE


def test_nothing_is_marked_when_no_sentence_is_close(embedder):
    [sentences] = highlight_many(embedder, "best sourdough bread recipe with rye flour", [PASSAGE])
    assert not any(s.marked for s in sentences)


def test_each_passage_is_highlighted_on_its_own(embedder):
    other = "Valacyclovir reduced symptoms in patients with herpesvirus reactivation. The trial was small."
    first, second = highlight_many(embedder, "Which antiviral helped?", [PASSAGE, other])
    assert [s.text for s in second if s.marked][0].startswith("Valacyclovir")
    assert len(first) == 3 and len(second) == 2
