"""The Gradio chat app and its API: ask a question, get a quoted digest and cited study cards."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr

from qa.config import CATEGORY_TAGS, DEFAULT_CONCURRENCY, DEFAULT_K
from qa.search.types import Filters
from qa.serve.conversation import Conversation
from qa.serve.handlers import SORTS, Handlers
from qa.serve.inputs import (
    ANY,
    MAX_QUESTION,
)
from qa.serve.service import Service, make_service  # noqa: F401  (make_service: re-exported for callers)
from qa.serve.views import (
    build_text,
    filter_note_text,
    index_about,
    reader_about,
    year_choices,
)

EXAMPLES = [
    "Has any antiviral helped ME/CFS patients?",
    "Does low-dose naltrexone help?",
    "What happens to the body after exertion (PEM)?",
    "Are there blood tests that can diagnose ME/CFS?",
    "What is known about Long COVID and the immune system?",
]

STATIC = Path(__file__).parent / "static"
CSS = (STATIC / "app.css").read_text(encoding="utf-8")
#: Client side of the answer area (runs once, on the element that holds the conversation).
CHAT_JS = (STATIC / "chat.js").read_text(encoding="utf-8")


def build_app(service: Service, operator: bool = False) -> gr.Blocks:
    """The Gradio Blocks app wired to `service`; `operator` adds the Rebuild control and endpoint."""
    handlers = Handlers(service)
    with gr.Blocks(title="Research summaries Q&A", analytics_enabled=False) as demo:
        ui = SimpleNamespace(**_conversation(service), **_panels(service, operator))
        _wire(demo, ui, handlers, service, operator)
    return demo


def _conversation(service: Service) -> dict[str, Any]:
    """The title, the answers, the question box and its buttons (inside a Blocks context)."""
    conv = gr.State(Conversation())  # changed in place by the handlers, never returned
    gr.Markdown(
        "# Ask the ME/CFS and Long COVID research summaries\n"
        "Ask in plain words. You get the sentences of the summaries that answer, quoted, and "
        "the studies they come from. Not medical advice.",
        elem_id="qa-intro",
    )
    found: dict[str, Any] = {}
    if not service.ready:  # `qa serve` on a new folder: the first build's progress, every second
        # A function: each page load reads the progress as it is then, not as it was at start.
        found["building"] = gr.Markdown(lambda: build_text(service), elem_id="qa-building")
        found["timer"] = gr.Timer(1.0)
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
    return {"conv": conv, "chat": chat, "question": question, "send": send, "clear": clear, **found}


def _panels(service: Service, operator: bool) -> dict[str, Any]:
    """Filters, the source view, citations and the About panels (with Rebuild for operators)."""
    years = year_choices(service)
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
        # Any value is let through to `open_source`, which answers an id it does not know with a
        # line; Gradio's own check of the choices logged a traceback for each such request.
        pick = gr.Dropdown(choices=[], label="Cited study", allow_custom_value=True, elem_id="qa-source-pick")
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
    found = {
        "note": note,
        "tags": tags,
        "date_from": date_from,
        "date_to": date_to,
        "sort": sort,
        "k": k,
        "clear_filters": clear_filters,
        "pick": pick,
        "source": source,
        "as_text": as_text,
        "as_bib": as_bib,
        "as_ris": as_ris,
        "cite_box": cite_box,
        "cite_file": cite_file,
        "about": about,
    }
    if operator:
        found.update(index_about_box=index_about_box, rebuild_button=rebuild_button, status=status)
    return found


def _wire(demo: gr.Blocks, ui: SimpleNamespace, handlers: Handlers, service: Service, operator: bool) -> None:
    """Each event of the page to its handler (all private: only `/ask` is the API)."""
    private = {"api_visibility": "private"}
    filters_in = [ui.tags, ui.date_from, ui.date_to, ui.k, ui.sort]
    # "multiple": Gradio's default ("once") dropped a second question's answer while the first
    # was being searched. Each question opens its turn at once (`echo`, outside the queue) and
    # each `respond` answers the oldest open one, so questions asked close together are all
    # answered, in order (qa/serve/conversation.py).
    for trigger in (ui.send.click, ui.question.submit):
        trigger(
            handlers.echo,
            [ui.question, ui.conv],
            [ui.question, ui.chat],
            queue=False,
            trigger_mode="multiple",
            **private,
        ).then(
            handlers.respond,
            [ui.conv, *filters_in],
            [ui.chat, ui.pick],
            show_progress="hidden",
            trigger_mode="multiple",
            **private,
        )
    ui.clear.click(
        handlers.new_conversation,
        ui.conv,
        [ui.chat, ui.pick, ui.source, ui.cite_box, ui.cite_file],
        js="() => { history.replaceState(null, '', location.pathname); return []; }",
        queue=False,  # at once, not behind searches: a question asked next must not be cleared
        **private,
    )
    for control in (ui.tags, ui.date_from, ui.date_to):
        control.change(handlers.filter_note, [ui.tags, ui.date_from, ui.date_to], ui.note, **private)
    ui.clear_filters.click(
        handlers.clear_filters, None, [ui.tags, ui.date_from, ui.date_to, ui.sort, ui.k], **private
    )
    ui.pick.change(handlers.open_source, ui.pick, ui.source, **private)
    if hasattr(ui, "timer"):
        ui.timer.tick(
            handlers.build_tick,
            None,
            [ui.building, ui.timer, ui.date_from, ui.date_to, ui.about, ui.note],
            show_progress="hidden",
            **private,
        )
    ui.as_text.click(handlers.citations_text, ui.conv, ui.cite_box, **private)
    ui.as_bib.click(handlers.bibtex_file, ui.conv, ui.cite_file, **private)
    ui.as_ris.click(handlers.ris_file, ui.conv, ui.cite_file, **private)
    if operator:
        # Callable by the operator's page and tests, but not listed in the API docs or as an MCP tool.
        ui.rebuild_button.click(
            handlers.rebuild,
            None,
            [ui.status, ui.index_about_box],
            api_name="rebuild",
            api_visibility="undocumented",
        )
        demo.load(lambda: index_about(service), None, ui.index_about_box, **private)
    demo.load(
        handlers.on_load,
        ui.conv,
        [ui.tags, ui.date_from, ui.date_to, ui.sort, ui.chat, ui.pick, ui.note, ui.about],
        show_progress="hidden",
        **private,
    )
    gr.api(handlers.ask, api_name="ask")


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
#: Gradio keeps each session's state (a reader's conversation; one per `/ask` call too) for
#: this many sessions, the least recently used dropped first. Its default, 10,000, grew a server
#: by about 85 MB per 1,000 API calls (bench/soak.py); a reader's conversation is still kept
#: until a thousand other sessions have been used since their last question.
STATE_SESSIONS = 1000
LAUNCH_OPTIONS: dict[str, Any] = {
    "css": CSS,
    "theme": THEME,
    "max_file_size": 0,
    "state_session_capacity": STATE_SESSIONS,
}
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
    with `watch`, the index follows changes to the summaries folder (and always an update another
    process writes, checked twice a second); with `operator`, the page
    offers Rebuild (and `/rebuild` answers), which visitors otherwise cannot reach. Once it
    listens, the server says so in its index folder, so `qa ask` can ask it (qa/serve/remote.py).
    """
    from qa.serve import remote

    if watch:
        service.watch(threading.Event())
    service.follow_in_background(threading.Event())  # `qa index` or another server's updates
    demo = queued(build_app(service, operator=operator), concurrency)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        mcp_server=mcp,
        prevent_thread_lock=True,
        **LAUNCH_OPTIONS,
    )
    try:  # without it `qa ask` searches in its own process: slower, still right
        remote.announce(service.index_dir, host, demo.server_port or port, service.settings.rerank)
    except OSError as exc:
        print(f"warning: could not note this server for `qa ask` ({exc})", flush=True)
    demo.block_thread()
