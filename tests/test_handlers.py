"""The chat's handlers as plain methods, over a small index with the fake embedder (no model)."""

from __future__ import annotations

import pytest

from qa.corpus.documents import load_folder
from qa.search.pipeline import Searcher
from qa.search.types import SearchSettings
from qa.serve.handlers import EMPTY_CONVERSATION, SEARCH_FAILED, SORTS, Handlers
from qa.serve.service import Service
from tests.conftest import write_summary


@pytest.fixture(scope="module")
def handlers(tmp_path_factory, fake_embedder):
    from qa.index.update import update_index

    root = tmp_path_factory.mktemp("handlers")
    docs = root / "docs"
    docs.mkdir()
    write_summary(
        docs, "pacing.md", "Pacing and energy envelopes", "Pacing reduced crashes in 40 of 50 people."
    )
    write_summary(docs, "ldn.md", "Low-dose naltrexone <b>in</b> ME/CFS", "Naltrexone eased pain for some.")
    index, _ = update_index(root / "index", load_folder(docs), fake_embedder)
    settings = SearchSettings(rerank="none", multilingual=False)
    searcher = Searcher(index, fake_embedder, settings)
    return Handlers(Service(docs, root / "index", fake_embedder, searcher, settings=settings, follow=False))


def _controls():
    return [], "Any", "Any", 2, SORTS[0]


def test_a_question_becomes_a_turn_with_its_studies(handlers):
    conv, _ = handlers.answer_turn("Does naltrexone ease pain?", dict(EMPTY_CONVERSATION), *_controls())
    assert len(conv["turns"]) == 1 and conv["studies"][0] == "ldn.md"
    html = conv["turns"][0]
    assert 'id="t1"' in html and "Does naltrexone ease pain?" in html
    assert "<b>in</b>" not in html and "&lt;b&gt;in&lt;/b&gt;" in html, "titles are text, never markup"
    opened, _ = handlers.answer_turn("more on 1", conv, *_controls())
    assert "Study 1 of the last answer, in full." in opened["turns"][1]


def test_a_failed_search_ends_with_a_message_not_silence(handlers, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the model fell over")

    monkeypatch.setattr(handlers.service, "ask", broken)
    conv, _ = handlers.safe_turn("Does pacing help?", {**EMPTY_CONVERSATION, "pending": "x"}, *_controls())
    assert SEARCH_FAILED in conv["turns"][-1] and conv["pending"] == ""


def test_echo_shows_the_question_at_once_and_keeps_it_pending(handlers):
    box, chat, conv, asked = handlers.echo("  Does pacing help?  ", dict(EMPTY_CONVERSATION))
    assert box == "" and "Searching…" in chat and conv["pending"] == asked == "Does pacing help?"
    unchanged = handlers.echo("   ", dict(EMPTY_CONVERSATION))
    assert unchanged[2] == EMPTY_CONVERSATION


def test_reversed_years_are_explained_in_a_sentence(handlers):
    conv, _ = handlers.answer_turn(
        "Does pacing help?", dict(EMPTY_CONVERSATION), [], "2025", "2020", 2, SORTS[0]
    )
    assert "The From date (2025) is after the To date (2020). Fix the filter" in conv["turns"][0]
    assert handlers.filter_note([], "2025", "2020").startswith("The From date")
    assert handlers.clear_filters() == ([], "Any", "Any", SORTS[0], 5)
