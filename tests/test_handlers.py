"""The chat's handlers as plain methods, over a small index with the fake embedder (no model)."""

from __future__ import annotations

import threading

import gradio as gr
import pytest

from qa.corpus.documents import load_folder
from qa.search.pipeline import Searcher
from qa.search.types import SearchSettings
from qa.serve.conversation import Conversation
from qa.serve.handlers import SEARCH_FAILED, SORTS, Handlers
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


def _ask(handlers, conv: Conversation, question: str, controls=None):
    """What the page does for one question: echo it, then answer the oldest open turn."""
    handlers.echo(question, conv)
    return handlers.respond(conv, *(controls or _controls()))


def test_a_question_becomes_a_turn_with_its_studies(handlers):
    conv = Conversation()
    html, pick = _ask(handlers, conv, "Does naltrexone ease pain?")
    [turn] = conv.turns()
    assert turn.studies[0] == "ldn.md" and pick["choices"][0][1] == "ldn.md"
    assert 'id="t1"' in html and "Does naltrexone ease pain?" in html
    assert "<b>in</b>" not in html and "&lt;b&gt;in&lt;/b&gt;" in html, "titles are text, never markup"
    html, _ = _ask(handlers, conv, "more on 1")
    assert "Study 1 of the last answer, in full." in conv.turns()[1].html
    assert handlers.citations_text(conv).count("\n") == len(turn.studies) - 1, "the opened study keeps them"


def test_a_failed_search_ends_with_a_message_not_silence(handlers, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the model fell over")

    monkeypatch.setattr(handlers.service, "ask", broken)
    conv = Conversation()
    html, _ = _ask(handlers, conv, "Does pacing help?")
    assert SEARCH_FAILED in html and "Searching…" not in html


def test_echo_shows_the_question_at_once_and_an_empty_box_asks_nothing(handlers):
    conv = Conversation()
    box, chat = handlers.echo("  Does pacing help?  ", conv)
    assert box == "" and "Searching…" in chat and "Does pacing help?" in chat
    assert handlers.echo("   ", conv) == (gr.update(), gr.update())
    assert [t.question for t in conv.turns()] == ["Does pacing help?"]


def test_questions_asked_before_the_first_is_answered_are_all_answered_in_order(handlers):
    """Answers computed at once never overwrite each other (a second question was lost so)."""
    conv = Conversation()
    questions = ["Does pacing help?", "Does naltrexone ease pain?", "and in long covid?"]
    for q in questions:
        handlers.echo(q, conv)
    workers = [threading.Thread(target=handlers.respond, args=(conv, *_controls())) for _ in questions]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    turns = conv.turns()
    assert [t.question for t in turns] == questions and all(t.answered for t in turns)
    assert turns[2].searched != questions[2], "the follow-up was read with the question before it"
    assert "Searching…" not in conv.html()


def test_an_answer_that_comes_after_new_conversation_is_dropped(handlers, monkeypatch):
    conv = Conversation()
    handlers.echo("Does pacing help?", conv)
    ask = handlers.service.ask

    def slow_while_cleared(*args, **kwargs):
        handlers.new_conversation(conv)  # the reader clears while this is searched
        return ask(*args, **kwargs)

    monkeypatch.setattr(handlers.service, "ask", slow_while_cleared)
    html, pick = handlers.respond(conv, *_controls())
    assert html == "" and conv.turns() == [] and pick == gr.update()


def test_reversed_years_are_explained_in_a_sentence(handlers):
    html, _ = _ask(handlers, Conversation(), "Does pacing help?", [[], "2025", "2020", 2, SORTS[0]])
    assert "The From date (2025) is after the To date (2020). Fix the filter" in html
    assert handlers.filter_note([], "2025", "2020").startswith("The From date")
    assert handlers.clear_filters() == ([], "Any", "Any", SORTS[0], 5)


def test_the_first_builds_progress_reads_as_words(monkeypatch):
    from qa.serve import service as module

    now = [100.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    progress = module.BuildProgress(now[0])
    assert progress.text() == "The summaries are being read, to prepare them for searching."
    progress.record(0, 2214)
    assert progress.text().endswith("0 of 2,214 passages done.")  # no rate yet: no time promised
    now[0] += 10
    progress.record(200, 2214)
    assert progress.text().endswith("200 of 2,214 passages done, about 2 minutes left.")
    progress.record(2214, 2214)
    assert progress.text().endswith("all 2,214 passages are done; the index is being finished.")
    progress.failed = "no space left on the disk"
    assert progress.text() == "The summaries could not be prepared for searching: no space left on the disk"


def test_a_question_after_a_failed_first_build_says_why(tmp_path, fake_embedder):
    from qa.serve.conversation import Conversation

    service = Service(tmp_path / "no-such-folder", tmp_path / "index", fake_embedder, follow=False)
    service.build_in_background().join(30)
    assert not service.ready and "no-such-folder" in service.building.failed
    handlers, conv = Handlers(service), Conversation()
    handlers.echo("Does pacing help?", conv)
    html, _ = handlers.respond(conv, *_controls())
    assert "could not be prepared for searching" in html and "no-such-folder" in html
    assert "Searching…" not in html and SEARCH_FAILED not in html
