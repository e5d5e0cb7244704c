"""The Gradio chat app and its API: ask a question, get a quoted digest and cited study cards."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import gradio as gr

from qa.config import CATEGORY_TAGS, DEFAULT_CONCURRENCY, DEFAULT_K
from qa.corpus.citations import to_text
from qa.errors import QAError
from qa.present.answer import answer_to_dict, cut_note
from qa.present.render import answer_html, answer_text, share_query, turn_html
from qa.present.text import text_html
from qa.search.followup import wants_study, with_context
from qa.search.types import Filters
from qa.serve.inputs import (
    ANY,
    MAX_QUESTION,
    as_sentence,
    check_date,
    check_filters,
    check_k,
    check_question,
    typed,
)
from qa.serve.service import Service, make_service  # noqa: F401  (make_service: re-exported for callers)
from qa.serve.views import (
    chat_html,
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

EXAMPLES = [
    "Has any antiviral helped ME/CFS patients?",
    "Does low-dose naltrexone help?",
    "What happens to the body after exertion (PEM)?",
    "Are there blood tests that can diagnose ME/CFS?",
    "What is known about Long COVID and the immune system?",
]
SORTS = ("Best match", "Newest first")

LOG = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
CSS = (STATIC / "app.css").read_text(encoding="utf-8")
#: Client side of the answer area (runs once, on the element that holds the conversation).
CHAT_JS = (STATIC / "chat.js").read_text(encoding="utf-8")


SEARCHING = '<p class="qa-wait" role="status">Searching…</p>'
SEARCH_FAILED = (
    "Something went wrong while searching for this question, so there is no answer to show. "
    "Please ask again, perhaps in other words."
)
EMPTY_CONVERSATION: dict = {"question": "", "studies": [], "turns": [], "pending": ""}


def build_app(service: Service, operator: bool = False) -> gr.Blocks:
    """The Gradio Blocks app wired to `service`; `operator` adds the Rebuild control and endpoint."""

    def ask(
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
        searched = with_context(question, previous)
        try:
            answer = service.ask(searched, filters, k)
            data = answer_to_dict(answer, service.highlights(answer))
        except Exception:  # a plain error for the client, the traceback for the operator
            LOG.exception("the search failed for an /ask question of %d characters", len(question))
            raise gr.Error(SEARCH_FAILED, print_exception=False) from None
        data["question"] = question
        data.setdefault("searched", searched)
        if not answer.studies and filters.active and matching_studies(service, filters) == 0:
            data["reason"] = "no study matches these filters"
        return data

    def answer_turn(message: str, conv: dict, tags, date_from, date_to, k, sort) -> tuple[dict, Any]:
        """The reply to one message as a new turn; returns the new conversation and picker update."""
        turns = list(conv["turns"])
        turn = f"t{len(turns) + 1}"
        conv = {**conv, "pending": ""}
        wanted = wants_study(message)
        ids = conv["studies"]
        if wanted and ids:
            number = len(ids) if wanted == -1 else wanted
            if 1 <= number <= len(ids):
                body, note = (
                    source_view(service, ids[number - 1]),
                    f"Study {number} of the last answer, in full.",
                )
            else:
                body, note = f"<p>There is no study {wanted} in the last answer (1 to {len(ids)}).</p>", ""
            return {**conv, "turns": [*turns, turn_html(turn, message, body, note)]}, gr.update()
        try:
            filters = check_filters(tags, date_from, date_to)
            k = check_k(k)
        except ValueError as exc:
            body = f'<p class="qa-notcovered">{text_html(as_sentence(str(exc)))}. Fix the filter and ask again.</p>'
            return {**conv, "turns": [*turns, turn_html(turn, message, body)]}, gr.update()
        searched = with_context(message, conv["question"])
        answer = service.ask(searched, filters, k)
        if sort == SORTS[1]:
            answer = newest_first(answer)
        highlights = service.highlights(answer)
        types = study_designs(service, answer)
        full = {s.doc_id: summary_parts(service, s.doc_id) for s in answer.studies}
        matching = matching_studies(service, filters) if filters.active else None
        body = answer_html(answer, highlights, turn, types, full, matching)
        notes = [text_html(cut_note(answer.cut)) + "."] if answer.cut else []
        if searched != message:
            notes.append(f"Read as a follow-up to your last question: “{text_html(searched)}”.")
        if answer.rerank_skipped == "busy":
            notes.append(BUSY_NOTE)
        as_searched = getattr(answer, "searched", "")  # after spelling/acronym expansion, if any
        if isinstance(as_searched, str) and as_searched and as_searched != searched:
            notes.append(f"Searched as: “{text_html(as_searched)}”.")
        copy = answer_text(answer, highlights, message, types)
        share = share_query(searched, filters, "newest" if sort == SORTS[1] else "")
        html = turn_html(turn, message, body, " ".join(notes), copy, share)
        conv = {
            **conv,
            "turns": [*turns, html],
            "question": searched,
            "studies": [s.doc_id for s in answer.studies],
        }
        labels = [
            (f"{s.rank}. {s.citation.label} — {s.citation.title[:70]}", s.doc_id) for s in answer.studies
        ]
        return conv, gr.update(choices=labels, value=None)

    def safe_turn(message: str, conv: dict, *controls) -> tuple[dict, Any]:
        """`answer_turn`, or a turn that says the search failed: never "Searching…" for ever."""
        try:
            return answer_turn(message, conv, *controls)
        except Exception:  # whatever broke, the reader gets a calm message and may ask again
            LOG.exception("the search failed for a question of %d characters", len(message))
            turns = list(conv["turns"])
            body = f'<p class="qa-notcovered" role="alert">{SEARCH_FAILED}</p>'
            turn = turn_html(f"t{len(turns) + 1}", message, body)
            return {**conv, "turns": [*turns, turn], "pending": ""}, gr.update()

    def echo(message: str, conv: dict):
        message = typed(message)
        if not message:
            return gr.update(), gr.update(), conv
        turns = conv["turns"]
        pending = turn_html(f"t{len(turns) + 1}", message, SEARCHING, pending=True)
        return "", chat_html([*turns, pending]), {**conv, "pending": message}

    def respond(conv: dict, tags, date_from, date_to, k, sort):
        if not conv.get("pending"):
            return gr.update(), conv, gr.update()
        conv, pick_update = safe_turn(conv["pending"], conv, tags, date_from, date_to, k, sort)
        return chat_html(conv["turns"]), conv, pick_update

    def on_load(request: gr.Request):
        """Open `/?q=…&tag=…&from=…&to=…&sort=newest` with those filters set and the question answered."""
        params = request.query_params if request else {}
        tags = [
            t for t in (params.getlist("tag") if hasattr(params, "getlist") else []) if t in CATEGORY_TAGS
        ]
        years = year_choices(service)
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
        chat_update, conv_update, pick_update = gr.skip(), gr.skip(), gr.skip()
        question = typed(params.get("q", ""))
        if question:
            conv, pick_update = safe_turn(question, dict(EMPTY_CONVERSATION), tags, *dates, DEFAULT_K, sort)
            chat_update, conv_update = chat_html(conv["turns"]), conv
        filters = _safe_filters(tags, *dates)
        return (
            tags,
            *date_updates,
            sort,
            chat_update,
            conv_update,
            pick_update,
            filter_note_text(service, filters) if filters else "",
            reader_about(service),
        )

    def _safe_filters(tags, date_from, date_to) -> Filters | None:
        try:
            return check_filters(tags, date_from, date_to)
        except ValueError:
            return None

    def filter_note(tags, date_from, date_to):
        try:
            return filter_note_text(service, check_filters(tags, date_from, date_to))
        except ValueError as exc:
            return f"{text_html(as_sentence(str(exc)))}: no study can match."

    def open_source(doc_id: str | None) -> str:
        return source_view(service, doc_id) if doc_id else ""

    def citations_text(conv: dict) -> str:
        return to_text(service.citations(conv.get("studies", [])))

    def rebuild(progress=gr.Progress()):
        def report(done: int, total: int, what: str) -> None:
            progress(done / max(total, 1), desc=f"{what} {done}/{total}")

        progress(0, desc="reading summaries")
        try:
            result = service.rebuild(report)
        except QAError as exc:  # the old index stays in use
            return f"The index was not updated: {text_html(str(exc))}", index_about(service)
        return f"Index updated: {result.summary()}.", index_about(service)

    years = year_choices(service)
    with gr.Blocks(title="Research summaries Q&A", analytics_enabled=False) as demo:
        conv = gr.State(dict(EMPTY_CONVERSATION))
        gr.Markdown(
            "# Ask the ME/CFS and Long COVID research summaries\n"
            "Ask in plain words. You get the sentences of the summaries that answer, quoted, and "
            "the studies they come from. Not medical advice.",
            elem_id="qa-intro",
        )
        chat = gr.HTML(
            "",
            html_template='<div class="qa-chat" role="region" aria-label="Questions and answers">${value}</div>',
            js_on_load=CHAT_JS,
            elem_id="qa-chat",
        )
        with gr.Row(equal_height=True, elem_id="qa-ask-row"):
            question = gr.Textbox(
                label="Your question",
                placeholder="e.g. Has any antiviral helped?",
                scale=5,
                min_width=200,
                max_length=MAX_QUESTION,
                info=f"Up to {MAX_QUESTION:,} characters.",
                elem_id="qa-question",
            )
            send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="qa-ask")
        clear = gr.Button("New conversation", size="sm", elem_id="qa-new")
        gr.Examples(EXAMPLES, inputs=question, label="Example questions", elem_id="qa-examples")
        with gr.Accordion("Filters", open=False, elem_id="qa-filters-box"):
            note = gr.Markdown(filter_note_text(service, Filters()), elem_id="qa-filter-note")
            tags = gr.CheckboxGroup(list(CATEGORY_TAGS), label="Study type (tag)", elem_id="qa-tags")
            with gr.Row():
                date_from = gr.Dropdown(years, value=ANY, label="Published from (year)", elem_id="qa-from")
                date_to = gr.Dropdown(years, value=ANY, label="Published to (year)", elem_id="qa-to")
            sort = gr.Radio(list(SORTS), value=SORTS[0], label="Order", elem_id="qa-sort")
            k = gr.Slider(1, 10, value=DEFAULT_K, step=1, label="Studies shown", elem_id="qa-k")
            clear_filters = gr.Button("Clear filters", size="sm", elem_id="qa-clear-filters")
        with gr.Accordion("Read a cited study in full", open=False, elem_id="qa-source-box"):
            pick = gr.Dropdown(choices=[], label="Cited study", elem_id="qa-source-pick")
            source = gr.HTML(elem_id="qa-source")
        with gr.Accordion("Cite these studies", open=False):
            with gr.Row():
                as_text = gr.Button("Citations as text", size="sm", elem_id="qa-cite-text")
                as_bib = gr.Button("BibTeX file", size="sm", elem_id="qa-cite-bib")
                as_ris = gr.Button("RIS file", size="sm", elem_id="qa-cite-ris")
            cite_box = gr.Textbox(label="Citations", lines=4, buttons=["copy"], elem_id="qa-cite-box")
            cite_file = gr.File(label="Download", visible=False, elem_id="qa-cite-file")
        with gr.Accordion("About these summaries", open=False, elem_id="qa-about-box"):
            about = gr.Markdown(reader_about(service), elem_id="qa-about")
            if operator:  # visitors never see or call Rebuild unless the operator turned it on
                index_about_box = gr.Markdown(index_about(service), elem_id="qa-index-about")
                rebuild_button = gr.Button("Rebuild index", elem_id="qa-rebuild")
                status = gr.Markdown()

        private = {"api_visibility": "private"}
        filters_in = [tags, date_from, date_to, k, sort]
        for trigger in (send.click, question.submit):
            trigger(echo, [question, conv], [question, chat, conv], queue=False, **private).then(
                respond, [conv, *filters_in], [chat, conv, pick], show_progress="hidden", **private
            )
        clear.click(
            lambda: (
                "",
                dict(EMPTY_CONVERSATION),
                gr.update(choices=[], value=None),
                "",
                "",
                gr.update(value=None, visible=False),
            ),
            None,
            [chat, conv, pick, source, cite_box, cite_file],
            js="() => { history.replaceState(null, '', location.pathname); return []; }",
            **private,
        )
        for control in (tags, date_from, date_to):
            control.change(filter_note, [tags, date_from, date_to], note, **private)
        clear_filters.click(
            lambda: ([], ANY, ANY, SORTS[0], DEFAULT_K), None, [tags, date_from, date_to, sort, k], **private
        )
        pick.change(open_source, pick, source, **private)
        as_text.click(citations_text, conv, cite_box, **private)
        as_bib.click(
            lambda st: export_citations("bib", st.get("studies", []), service), conv, cite_file, **private
        )
        as_ris.click(
            lambda st: export_citations("ris", st.get("studies", []), service), conv, cite_file, **private
        )
        if operator:
            # Callable by the operator's page and tests, but not listed in the API docs or as an MCP tool.
            rebuild_button.click(
                rebuild, None, [status, index_about_box], api_name="rebuild", api_visibility="undocumented"
            )
            demo.load(lambda: index_about(service), None, index_about_box, **private)
        demo.load(
            on_load,
            None,
            [tags, date_from, date_to, sort, chat, conv, pick, note, about],
            show_progress="hidden",
            **private,
        )
        gr.api(ask, api_name="ask")
    return demo


#: Shown when many questions came at once and this answer skipped the reranker (search.py).
BUSY_NOTE = (
    "Many questions are being answered right now, so this answer was ordered by the quicker search only."
)

#: The system's own sans-serif for every weight. Gradio's default face, Source Sans Pro, ships a
#: SemiBold file of 55 glyphs declared for every character, so weight-600 text (headings, study
#: titles) mixed two families within a word ("Aᴅvancing").
FONTS = (
    "system-ui",
    "-apple-system",
    "Segoe UI",
    "Roboto",
    "Noto Sans",
    "Helvetica Neue",
    "Arial",
    "sans-serif",
)
THEME = gr.themes.Default(font=FONTS, font_mono=("ui-monospace", "Menlo", "Consolas", "monospace"))
#: Options for `launch`: the stylesheet and theme, and no uploads (the app takes none; Gradio
#: would take any).
LAUNCH_OPTIONS: dict[str, Any] = {"css": CSS, "theme": THEME, "max_file_size": 0}
#: Questions that may wait beyond those; past this a client is told the server is busy at once
#: rather than waiting minutes.
QUEUE_SIZE = 256


def queued(demo: gr.Blocks, concurrency: int = DEFAULT_CONCURRENCY) -> gr.Blocks:
    """`demo` with its queue set: `concurrency` events at once, at most QUEUE_SIZE waiting."""
    return demo.queue(default_concurrency_limit=concurrency, max_size=QUEUE_SIZE)


def serve(
    service: Service,
    host: str = "127.0.0.1",
    port: int = 7860,
    mcp: bool = False,
    watch: bool = False,
    operator: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> None:
    """Serve the app until interrupted (loopback by default, never a share link).

    With `mcp`, the `/ask` endpoint is also an MCP tool for AI assistants (needs gradio[mcp]);
    with `watch`, the index follows changes to the summaries folder; with `operator`, the page
    offers Rebuild (and `/rebuild` answers), which visitors otherwise cannot reach. Once it
    listens, the server says so in its index folder, so `qa ask` can ask it (qa/serve/remote.py).
    """
    from qa.serve import remote

    if watch:
        service.watch(threading.Event())
    demo = queued(build_app(service, operator=operator), concurrency)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        mcp_server=mcp,
        prevent_thread_lock=True,
        **LAUNCH_OPTIONS,
    )
    remote.announce(service.index_dir, host, demo.server_port or port, service.settings.rerank)
    demo.block_thread()
