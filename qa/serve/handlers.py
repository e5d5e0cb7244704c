"""What the chat does for each event of its page, as plain methods over a service.

Each takes and returns plain values (the conversation is a dict kept in Gradio's state), so a
test can call it without a browser; qa/serve/app.py lays the page out and wires events to these."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from qa.config import CATEGORY_TAGS, DEFAULT_K
from qa.corpus.citations import to_text
from qa.errors import QAError
from qa.present.answer import answer_to_dict, cut_note
from qa.present.render import answer_html, answer_text, share_query, turn_html
from qa.present.text import text_html
from qa.present.view import answer_view
from qa.search.followup import wants_study, with_context
from qa.search.types import Filters
from qa.serve.conversation import Conversation, Turn
from qa.serve.inputs import (
    ANY,
    as_sentence,
    check_date,
    check_filters,
    check_k,
    check_question,
    typed,
)
from qa.serve.service import NotReady, Service
from qa.serve.views import (
    build_text,
    export_citations,
    filter_note_text,
    index_about,
    matching_studies,
    newest_first,
    reader_about,
    source_view,
    study_designs,
    summary_parts,
    year_choices,
)

SORTS = ("Best match", "Newest first")


LOG = logging.getLogger(__name__)

#: How long a question asked during the first build waits for it before the reader is told.
FIRST_BUILD_WAIT = 600.0


SEARCH_FAILED = (
    "Something went wrong while searching for this question, so there is no answer to show. "
    "Please ask again, perhaps in other words."
)


def cited(conv: Conversation) -> list[str]:
    """The studies the last answer that searched cited (what "Cite these studies" exports)."""
    searched = [t for t in conv.turns() if t.answered and t.searched]
    return list(searched[-1].studies) if searched else []


class Handlers:
    """What the app does for each event, as plain methods over a service (unit-testable)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def new_conversation(self, conv: Conversation) -> tuple:
        """An empty chat and memory: chat, picker, source, citations, download."""
        conv.clear()
        return (
            "",
            gr.update(choices=[], value=None),
            "",
            "",
            gr.update(value=None, visible=False),
        )

    def clear_filters(self) -> tuple:
        """Every filter back to its default: tags, from, to, order, studies shown."""
        return [], ANY, ANY, SORTS[0], DEFAULT_K

    def bibtex_file(self, conv: Conversation) -> Any:
        """The download box with a BibTeX file of the last answer's cited studies."""
        return export_citations("bib", cited(conv), self.service)

    def ris_file(self, conv: Conversation) -> Any:
        """The download box with an RIS file of the last answer's cited studies."""
        return export_citations("ris", cited(conv), self.service)

    def ask(
        self,
        question: str,
        tags: list[str] | None = None,
        date_from: str = "",
        date_to: str = "",
        k: int = DEFAULT_K,
        previous: str = "",
    ) -> dict:
        """Search the research summaries for passages that answer a question about ME/CFS or Long COVID.

        Returns the ranked studies, each with citation fields (label, authors, year, title,
        publisher, DOI/url, tags), its best passages with section names, the sentences that
        best answer the question, and scores. `covered` is false when no summary seems to
        answer; the nearest passages are then still returned.

        Args:
            question: the question, in plain words (at most 1000 characters).
            tags: only studies with any of these tags: Treatment, Biomarker, Landmark, Trial, News.
            date_from: only studies published on or after this date (YYYY, YYYY-MM or YYYY-MM-DD).
            date_to: only studies published on or before this date.
            k: how many studies to return, a whole number from 1 to 20 (default 5).
            previous: the previous question, so a short follow-up ("and in Long COVID?") is read with it.
        """
        try:
            question = check_question(question)
            previous = check_question(previous, "previous")
            filters = check_filters(tags, date_from, date_to)
            k = check_k(k)
            if not question:
                raise ValueError("question is empty: send a question in plain words")
        except ValueError as exc:  # the client's mistake: a message, not a traceback in the log
            raise gr.Error(str(exc), print_exception=False) from None
        if not self.service.ready:  # the first build is still running: say how far it is
            raise gr.Error(f"{build_text(self.service)} Ask again in a moment.", print_exception=False)
        searched = with_context(question, previous)
        try:
            answer = self.service.ask(searched, filters, k)
            data = answer_to_dict(answer, self.service.highlights(answer))
        except Exception:  # a plain error for the client, the traceback for the operator
            LOG.exception("the search failed for an /ask question of %d characters", len(question))
            raise gr.Error(SEARCH_FAILED, print_exception=False) from None
        data["question"] = question
        data.setdefault("searched", searched)
        if not answer.studies and filters.active and matching_studies(self.service, filters) == 0:
            data["reason"] = "no study matches these filters"
        return data

    def answer_turn(
        self,
        number: int,
        message: str,
        previous: str,
        studies: tuple[str, ...],
        tags,
        date_from,
        date_to,
        k,
        sort,
    ) -> Turn:
        """The reply to one message as turn `number`, read after the `previous` question and its `studies`."""
        turn = f"t{number}"
        wanted = wants_study(message)
        if wanted and studies:
            chosen = len(studies) if wanted == -1 else wanted
            if 1 <= chosen <= len(studies):
                body = source_view(self.service, studies[chosen - 1])
                note = f"Study {chosen} of the last answer, in full."
            else:
                body, note = (
                    f"<p>There is no study {wanted} in the last answer (1 to {len(studies)}).</p>",
                    "",
                )
            return Turn(number, message, turn_html(turn, message, body, note))
        try:
            filters = check_filters(tags, date_from, date_to)
            k = check_k(k)
        except ValueError as exc:
            body = f'<p class="qa-notcovered">{text_html(as_sentence(str(exc)))}. Fix the filter and ask again.</p>'
            return Turn(number, message, turn_html(turn, message, body))
        searched = with_context(message, previous)
        answer = self.service.ask(searched, filters, k)
        if sort == SORTS[1]:
            answer = newest_first(answer)
        highlights = self.service.highlights(answer)
        types = study_designs(self.service, answer)
        full = {s.doc_id: summary_parts(self.service, s.doc_id) for s in answer.studies}
        matching = matching_studies(self.service, filters) if filters.active else None
        view = answer_view(answer, highlights, types, full)
        body = answer_html(view, turn, matching)
        notes = [text_html(cut_note(answer.cut)) + "."] if answer.cut else []
        if searched != message:
            notes.append(f"Read as a follow-up to your last question: “{text_html(searched)}”.")
        if answer.rerank_skipped == "busy":
            notes.append(BUSY_NOTE)
        as_searched = getattr(answer, "searched", "")  # after spelling/acronym expansion, if any
        if isinstance(as_searched, str) and as_searched and as_searched != searched:
            notes.append(f"Searched as: “{text_html(as_searched)}”.")
        copy = answer_text(view, message)
        share = share_query(searched, filters, "newest" if sort == SORTS[1] else "")
        labels = tuple(
            (f"{s.rank}. {s.citation.label} — {s.citation.title[:70]}", s.doc_id) for s in answer.studies
        )
        return Turn(
            number,
            message,
            turn_html(turn, message, body, " ".join(notes), copy, share),
            searched=searched,
            studies=tuple(s.doc_id for s in answer.studies),
            labels=labels,
        )

    def safe_turn(
        self, number: int, message: str, previous: str, studies: tuple[str, ...], *controls
    ) -> Turn:
        """`answer_turn`, or a turn that says the search failed: never "Searching…" for ever."""
        try:
            return self.answer_turn(number, message, previous, studies, *controls)
        except NotReady as exc:  # a first build that failed, or still runs after FIRST_BUILD_WAIT
            body = f'<p class="qa-notcovered" role="status">{text_html(str(exc))}</p>'
            return Turn(number, message, turn_html(f"t{number}", message, body))
        except Exception:  # whatever broke, the reader gets a calm message and may ask again
            LOG.exception("the search failed for a question of %d characters", len(message))
            body = f'<p class="qa-notcovered" role="alert">{SEARCH_FAILED}</p>'
            return Turn(number, message, turn_html(f"t{number}", message, body))

    def echo(self, message: str, conv: Conversation):
        """The question opened as a turn and shown at once with "Searching…": box and chat."""
        message = typed(message)
        if not message:
            return gr.update(), gr.update()
        conv.ask(message)
        return "", conv.html()

    def respond(self, conv: Conversation, tags, date_from, date_to, k, sort):
        """The oldest open question answered in its turn: chat and the "Cited study" picker."""
        # A question asked while the first build runs shows "Searching…" until the index is there.
        self.service.wait_ready(FIRST_BUILD_WAIT)
        with conv.answering() as claim:
            if claim is None:  # another event answered it: show the conversation as it is
                return conv.html(), gr.update()
            turn = claim.turn
            answered = self.safe_turn(
                turn.number, turn.question, claim.previous, claim.studies, tags, date_from, date_to, k, sort
            )
            if not conv.settle(claim, answered):  # cleared meanwhile: the answer is dropped
                return conv.html(), gr.update()
            return conv.html(), self._picker(answered)

    def _picker(self, turn: Turn) -> Any:
        if not turn.searched:  # an opened study or a failed search: the picker keeps its studies
            return gr.update()
        return gr.update(choices=list(turn.labels), value=None)

    def build_tick(self):
        """While the first build runs, its progress; once it ends, the filters and About filled in
        (progress, timer, from, to, About, filter note)."""
        building = self.service.building
        if not self.service.ready and not (building and building.failed):
            return build_text(self.service), gr.update(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        years = year_choices(self.service)
        return (
            build_text(self.service),
            gr.Timer(active=False),
            gr.update(choices=years),
            gr.update(choices=years),
            reader_about(self.service),
            filter_note_text(self.service, Filters()),
        )

    def on_load(self, conv: Conversation, request: gr.Request):
        """Open `/?q=…&tag=…&from=…&to=…&sort=newest` with those filters set and the question answered."""
        params = request.query_params if request else {}
        tags = [
            t for t in (params.getlist("tag") if hasattr(params, "getlist") else []) if t in CATEGORY_TAGS
        ]
        years = year_choices(self.service)
        dates = []
        for label, key in (("From", "from"), ("To", "to")):
            try:
                dates.append(check_date(label, params.get(key, "")) or ANY)
            except ValueError:
                dates.append(ANY)
        sort = SORTS[1] if params.get("sort", "") == "newest" else SORTS[0]
        date_updates = [
            gr.update(choices=sorted({*years, d}, key=lambda y: (y != ANY, y), reverse=False), value=d)
            for d in dates
        ]
        # Without `?q=`, the chat is left alone: this load can finish after the reader's first
        # question was echoed, and emptying the chat then lost that question.
        chat_update, pick_update = gr.skip(), gr.skip()
        question = typed(params.get("q", ""))
        if question:
            conv.ask(question)
            chat_update, pick_update = self.respond(conv, tags, *dates, DEFAULT_K, sort)
        filters = self._safe_filters(tags, *dates)
        return (
            tags,
            *date_updates,
            sort,
            chat_update,
            pick_update,
            filter_note_text(self.service, filters) if filters else "",
            reader_about(self.service),
        )

    def _safe_filters(self, tags, date_from, date_to) -> Filters | None:
        try:
            return check_filters(tags, date_from, date_to)
        except ValueError:
            return None

    def filter_note(self, tags, date_from, date_to):
        try:
            return filter_note_text(self.service, check_filters(tags, date_from, date_to))
        except ValueError as exc:
            return f"{text_html(as_sentence(str(exc)))}: no study can match."

    def open_source(self, doc_id: str | None) -> str:
        return source_view(self.service, doc_id) if doc_id and isinstance(doc_id, str) else ""

    def citations_text(self, conv: Conversation) -> str:
        return to_text(self.service.citations(cited(conv)))

    def rebuild(self, progress=gr.Progress()):
        def report(done: int, total: int, what: str) -> None:
            progress(done / max(total, 1), desc=f"{what} {done}/{total}")

        progress(0, desc="reading summaries")
        try:
            result = self.service.rebuild(report)
        except QAError as exc:  # the old index stays in use
            return f"The index was not updated: {text_html(str(exc))}", index_about(self.service)
        return f"Index updated: {result.summary()}.", index_about(self.service)


#: Shown when many questions came at once and this answer skipped the reranker (search.py).
BUSY_NOTE = (
    "Many questions are being answered right now, so this answer was ordered by the quicker search only."
)
