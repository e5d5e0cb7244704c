"""The Gradio chat app and its API: ask a question, get cited passages; rebuild the index live."""

from __future__ import annotations

import hashlib
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import gradio as gr

from qa.answer import DISCLAIMER, answer_to_dict
from qa.citations import to_bibtex, to_ris, to_text
from qa.config import CATEGORY_TAGS, DEFAULT_K
from qa.errors import QAError
from qa.followup import wants_study, with_context
from qa.render import answer_html, text_html
from qa.search import parse_filters
from qa.service import Service, make_service  # noqa: F401  (make_service: re-exported for callers)

EXAMPLES = [
    "Has any antiviral helped ME/CFS patients?",
    "Does low-dose naltrexone help?",
    "What happens to the body after exertion (PEM)?",
    "Are there blood tests that can diagnose ME/CFS?",
    "What is known about Long COVID and the immune system?",
]

CSS = """
.gradio-container { font-size: 17px; line-height: 1.55; }
.qa-study { border-top: 1px solid var(--border-color-primary); padding: 0.7em 0 0.5em 0; margin-top: 0.4em; }
.qa-cite { font-size: 1.05em; }
.qa-num { font-weight: 700; margin-right: 0.2em; }
.qa-meta, .qa-filters, .qa-also, .qa-disclaimer { color: inherit; opacity: 0.85; font-size: 0.92em; }
.qa-meta a { color: var(--link-text-color); }
.qa-tag { display: inline-block; border: 1px solid var(--border-color-primary); border-radius: 0.8em;
          padding: 0 0.55em; margin-left: 0.3em; font-size: 0.85em; }
.qa-section { font-weight: 600; font-size: 1em; margin: 0.4em 0 0.1em 0; }
.qa-passage { margin: 0.2em 0 0.4em 0; }
.qa-passage mark { background: #fff0a8; color: #111; padding: 0 0.1em; }
.qa-notcovered { background: var(--background-fill-secondary); color: var(--body-text-color);
                 border-left: 4px solid #b35c00; padding: 0.5em; }
.qa-source { font-size: 17px; max-height: 640px; overflow-y: auto; }
"""


def _export(kind: str, doc_ids: list[str], service: Service) -> str | None:
    citations = service.citations(doc_ids)
    if not citations:
        gr.Warning("Ask a question first: there are no cited studies to export yet.")
        return None
    text = to_bibtex(citations) if kind == "bib" else to_ris(citations)
    # One folder per process, one file per set of studies: repeated clicks reuse it.
    name = hashlib.sha1("\n".join(doc_ids).encode()).hexdigest()[:10]
    path = _export_folder() / name / f"cited-studies.{kind}"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


@lru_cache(maxsize=1)
def _export_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="qa-cite-"))


def build_app(service: Service) -> gr.Blocks:
    """The Gradio Blocks app wired to `service`."""

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
            question: the question, in plain words.
            tags: only studies with any of these tags: Treatment, Biomarker, Landmark, Trial, News.
            date_from: only studies published on or after this date (YYYY, YYYY-MM or YYYY-MM-DD).
            date_to: only studies published on or before this date.
            k: how many studies to return (1-20).
            previous: the previous question, so a short follow-up ("and in Long COVID?") is read with it.
        """
        searched = with_context(question, previous or "")
        try:
            filters = parse_filters(tags, date_from, date_to)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        answer = service.ask(searched, filters, max(1, min(int(k), 20)))
        data = answer_to_dict(answer, service.highlights(answer))
        data["question"] = question  # "searched" holds the follow-up as read
        return data

    def respond(message: str, history: list, last: dict, tags, date_from, date_to, k):
        message = (message or "").strip()
        choices = gr.update()
        if not message:
            return "", history, last, choices
        wanted = wants_study(message)
        if wanted and last.get("studies"):
            ids = last["studies"]
            if 1 <= wanted <= len(ids):
                reply = service.source(ids[wanted - 1])
            else:
                reply = f"<p>There is no study {wanted} in the last answer (1 to {len(ids)}).</p>"
            history = [
                *history,
                {"role": "user", "content": message},
                {"role": "assistant", "content": reply},
            ]
            return "", history, last, choices
        try:
            filters = parse_filters(tags, date_from, date_to)
        except ValueError as exc:
            gr.Warning(str(exc))
            return message, history, last, choices
        searched = with_context(message, last.get("question", ""))
        answer = service.ask(searched, filters, int(k))
        html = answer_html(answer, service.highlights(answer))
        if searched != message:
            html = f'<p class="qa-filters">Read as a follow-up: “{text_html(searched)}”</p>' + html
        history = [*history, {"role": "user", "content": message}, {"role": "assistant", "content": html}]
        last = {"question": searched, "studies": [s.doc_id for s in answer.studies]}
        labels = [
            (f"{s.rank}. {s.citation.label} — {s.citation.title[:70]}", s.doc_id) for s in answer.studies
        ]
        return "", history, last, gr.update(choices=labels, value=None)

    def open_source(doc_id: str | None) -> str:
        return service.source(doc_id) if doc_id else ""

    def citations_text(last: dict) -> str:
        return to_text(service.citations(last.get("studies", [])))

    def rebuild(progress=gr.Progress()):
        def report(done: int, total: int, what: str) -> None:
            progress(done / max(total, 1), desc=f"{what} {done}/{total}")

        progress(0, desc="reading summaries")
        try:
            result = service.rebuild(report)
        except QAError as exc:  # the old index stays in use
            return f"The index was not updated: {text_html(str(exc))}", service.about()
        return f"Index updated: {result.summary()}.", service.about()

    with gr.Blocks(title="Research summaries Q&A", analytics_enabled=False) as demo:
        last = gr.State({"question": "", "studies": []})
        gr.Markdown(
            "# Ask the ME/CFS and Long COVID research summaries\n"
            "Type a question. You get the passages of the summaries that answer it, each with "
            'its study and a link to the paper. Ask a short follow-up ("and in Long COVID?") '
            'or say "tell me more about 2" to read a study in full. '
            f"*{DISCLAIMER}*"
        )
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Answers",
                    show_label=False,
                    height=620,
                    sanitize_html=True,
                    feedback_options=None,
                    elem_id="qa-chat",
                )
                with gr.Row():
                    question = gr.Textbox(
                        label="Your question",
                        placeholder="e.g. Has any antiviral helped?",
                        scale=5,
                        elem_id="qa-question",
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="qa-ask")
                gr.Examples(EXAMPLES, inputs=question, label="Example questions")
                clear = gr.Button("New conversation", size="sm", elem_id="qa-new")
                with gr.Accordion("Read a cited study in full", open=False, elem_id="qa-source-box"):
                    pick = gr.Dropdown(choices=[], label="Cited study", elem_id="qa-source-pick")
                    source = gr.HTML(elem_id="qa-source")
                with gr.Accordion("Cite these studies", open=False):
                    with gr.Row():
                        as_text = gr.Button("Citations as text", size="sm", elem_id="qa-cite-text")
                        as_bib = gr.Button("BibTeX file", size="sm", elem_id="qa-cite-bib")
                        as_ris = gr.Button("RIS file", size="sm", elem_id="qa-cite-ris")
                    cite_box = gr.Textbox(label="Citations", lines=4, buttons=["copy"], elem_id="qa-cite-box")
                    cite_file = gr.File(label="Download", elem_id="qa-cite-file")
            with gr.Column(scale=1):
                with gr.Accordion("Filters (apply to the next question)", open=True):
                    tags = gr.CheckboxGroup(list(CATEGORY_TAGS), label="Study type", elem_id="qa-tags")
                    date_from = gr.Textbox(label="Published from", placeholder="YYYY or YYYY-MM-DD")
                    date_to = gr.Textbox(label="Published to", placeholder="YYYY or YYYY-MM-DD")
                    k = gr.Slider(1, 10, value=DEFAULT_K, step=1, label="Studies shown")
                with gr.Accordion("About this index", open=False):
                    about = gr.Markdown(service.about(), elem_id="qa-about")
                    rebuild_button = gr.Button("Rebuild index", elem_id="qa-rebuild")
                    status = gr.Markdown()

        private = {"api_visibility": "private"}
        inputs = [question, chatbot, last, tags, date_from, date_to, k]
        outputs = [question, chatbot, last, pick]
        send.click(respond, inputs, outputs, **private)
        question.submit(respond, inputs, outputs, **private)
        clear.click(
            lambda: ([], "", {"question": "", "studies": []}, gr.update(choices=[], value=None), ""),
            None,
            [chatbot, question, last, pick, source],
            **private,
        )
        pick.change(open_source, pick, source, **private)
        as_text.click(citations_text, last, cite_box, **private)
        as_bib.click(lambda st: _export("bib", st.get("studies", []), service), last, cite_file, **private)
        as_ris.click(lambda st: _export("ris", st.get("studies", []), service), last, cite_file, **private)
        # Callable by the app and tests, but not listed in the API docs or as an MCP tool.
        rebuild_button.click(
            rebuild, None, [status, about], api_name="rebuild", api_visibility="undocumented"
        )
        demo.load(service.about, None, about, api_visibility="private")
        gr.api(ask, api_name="ask")
    return demo


def serve(
    service: Service, host: str = "127.0.0.1", port: int = 7860, mcp: bool = False, watch: bool = False
) -> None:
    """Serve the app until interrupted (loopback by default, never a share link).

    With `mcp`, the `/ask` endpoint is also an MCP tool for AI assistants (needs gradio[mcp]);
    with `watch`, the index follows changes to the summaries folder.
    """
    if watch:
        service.watch(threading.Event())
    build_app(service).launch(
        server_name=host, server_port=port, share=False, css=CSS, theme=gr.themes.Default(), mcp_server=mcp
    )
