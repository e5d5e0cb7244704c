"""The Gradio chat app and its API: ask a question, get cited passages; rebuild the index live."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from qa.answer import DISCLAIMER, answer_to_dict
from qa.config import CATEGORY_TAGS, DEFAULT_K
from qa.documents import load_folder
from qa.embedding import Embedder, get_embedder
from qa.highlight import highlight_many
from qa.index import Index, Progress, UpdateReport, update_index
from qa.render import answer_html
from qa.search import Answer, Filters, Searcher

EXAMPLES = [
    "Has any antiviral helped ME/CFS patients?",
    "Does low-dose naltrexone help?",
    "What happens to the body after exertion (PEM)?",
    "Are there blood tests that can diagnose ME/CFS?",
    "What is known about Long COVID and the immune system?",
]

CSS = """
.gradio-container { font-size: 17px; line-height: 1.55; }
.qa-study { border-top: 1px solid #c8c8c8; padding: 0.6em 0; }
.qa-cite { font-size: 1.05em; }
.qa-num { font-weight: 700; margin-right: 0.2em; }
.qa-meta { color: #3d3d3d; font-size: 0.92em; margin: 0.2em 0; }
.qa-tag { display: inline-block; border: 1px solid #6b6b6b; border-radius: 0.8em;
          padding: 0 0.55em; margin-left: 0.3em; font-size: 0.85em; }
.qa-section { font-weight: 600; margin-top: 0.4em; }
.qa-passage { margin: 0.2em 0 0.4em 0; white-space: pre-wrap; }
.qa-passage mark { background: #fff0a8; color: #111; padding: 0 0.1em; }
.qa-notcovered { background: #fff4e5; border-left: 4px solid #b35c00; padding: 0.5em; }
.qa-filters, .qa-also, .qa-disclaimer { color: #3d3d3d; font-size: 0.9em; }
"""

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


@dataclass
class Service:
    """The app's state: the current searcher, swapped whole when the index is rebuilt."""

    docs: Path
    index_dir: Path
    embedder: Embedder
    searcher: Searcher
    last_report: UpdateReport | None = None
    last_rebuild: str = ""
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ask(self, question: str, filters: Filters = Filters(), k: int = DEFAULT_K) -> Answer:
        """Search with the current index."""
        return self.searcher.search(question, k=k, filters=filters)

    def highlights(self, answer: Answer) -> dict[int, list]:
        """Per study rank, the marked sentences of each shown passage."""
        texts = [p.chunk.text for s in answer.studies for p in s.passages]
        marked = highlight_many(self.embedder, answer.question, texts) if texts else []
        result, at = {}, 0
        for study in answer.studies:
            result[study.rank] = marked[at : at + len(study.passages)]
            at += len(study.passages)
        return result

    def rebuild(self, progress=None) -> UpdateReport:
        """Re-read the summaries, update the index, and swap it in without a restart."""
        with self.lock:
            loaded = load_folder(self.docs)
            self.problems = [str(p) for p in loaded.problems]
            index, report = update_index(self.index_dir, loaded, self.embedder, progress=progress)
            self.searcher = Searcher(index, self.embedder)
            self.last_report = report
            self.last_rebuild = time.strftime("%Y-%m-%d %H:%M:%S")
            return report

    def about(self) -> str:
        """Markdown for the "About this index" panel."""
        index: Index = self.searcher.index
        m = index.manifest
        lines = [
            f"- **Summaries:** {len(index.documents)} ({len(index.chunks)} passages)",
            f"- **Folder:** `{self.docs}`",
            f"- **Built:** {m.get('built_at', '?')}; **updated:** {m.get('updated_at', '?')}",
            f"- **Model:** {index.model}",
        ]
        if self.last_report:
            lines.append(f"- **Last rebuild:** {self.last_rebuild}: {self.last_report.summary()}")
        for problem in self.problems:
            lines.append(f"- **Skipped:** {problem}")
        return "\n".join(lines)


def parse_filters(tags: list[str] | None, date_from: str, date_to: str) -> Filters:
    """Filters from the form; raises ValueError with a plain message for a bad date."""
    dates = []
    for label, value in (("From", date_from), ("To", date_to)):
        value = (value or "").strip()
        if value and not _DATE.match(value):
            raise ValueError(f"{label} date must look like 2024, 2024-05 or 2024-05-31 (got {value!r})")
        dates.append(value)
    start, end = dates
    if end and len(end) < 10:  # "2024" means to the end of 2024
        end = end + "-99"
    return Filters(tuple(t for t in (tags or []) if t in CATEGORY_TAGS), start, end)


def build_app(service: Service) -> gr.Blocks:
    """The Gradio Blocks app wired to `service`."""

    def ask(
        question: str,
        tags: list[str] | None = None,
        date_from: str = "",
        date_to: str = "",
        k: int = DEFAULT_K,
    ) -> dict:
        """Search the summaries; returns studies with cited passages, highlights and scores."""
        answer = service.ask(question, parse_filters(tags, date_from, date_to), int(k))
        data = answer_to_dict(answer)
        marks = service.highlights(answer)
        for study in data["studies"]:
            for passage, sentences in zip(study["passages"], marks.get(study["rank"], [])):
                passage["highlights"] = [s.text for s in sentences if s.marked]
        return data

    def respond(message: str, history: list, tags, date_from, date_to, k):
        message = (message or "").strip()
        if not message:
            return "", history
        try:
            filters = parse_filters(tags, date_from, date_to)
        except ValueError as exc:
            gr.Warning(str(exc))
            return message, history
        answer = service.ask(message, filters, int(k))
        html = answer_html(answer, service.highlights(answer))
        history = [
            *history,
            {"role": "user", "content": message},
            {"role": "assistant", "content": html},
        ]
        return "", history

    def rebuild(progress=gr.Progress()):
        def report(done: int, total: int, what: str) -> None:
            progress(done / max(total, 1), desc=f"{what} {done}/{total}")

        progress(0, desc="reading summaries")
        result = service.rebuild(report)
        return f"Index updated: {result.summary()}.", service.about()

    with gr.Blocks(title="Research summaries Q&A") as demo:
        gr.Markdown(
            "# Ask the ME/CFS and Long COVID research summaries\n"
            "Type a question. You get the passages of the summaries that answer it, each with "
            f"its study and a link to the paper. *{DISCLAIMER}*"
        )
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Answers",
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
                clear = gr.Button("New conversation", size="sm")
            with gr.Column(scale=1):
                with gr.Accordion("Filters (apply to the next question)", open=True):
                    tags = gr.CheckboxGroup(list(CATEGORY_TAGS), label="Study type", elem_id="qa-tags")
                    date_from = gr.Textbox(label="Published from", placeholder="YYYY or YYYY-MM-DD")
                    date_to = gr.Textbox(label="Published to", placeholder="YYYY or YYYY-MM-DD")
                    k = gr.Slider(1, 10, value=DEFAULT_K, step=1, label="Studies shown")
                with gr.Accordion("About this index", open=False):
                    about = gr.Markdown(service.about())
                    rebuild_button = gr.Button("Rebuild index", elem_id="qa-rebuild")
                    status = gr.Markdown()

        inputs = [question, chatbot, tags, date_from, date_to, k]
        send.click(respond, inputs, [question, chatbot], api_visibility="private")
        question.submit(respond, inputs, [question, chatbot], api_visibility="private")
        clear.click(lambda: ([], ""), None, [chatbot, question], api_visibility="private")
        rebuild_button.click(rebuild, None, [status, about], api_name="rebuild")
        gr.api(ask, api_name="ask")
    return demo


def make_service(docs: Path, index_dir: Path, model: str = "", progress: Progress | None = None) -> Service:
    """Bring the index up to date with `docs` and return a ready `Service`."""
    embedder = get_embedder(model)
    loaded = load_folder(docs)
    index, report = update_index(index_dir, loaded, embedder, progress=progress)
    service = Service(docs, index_dir, embedder, Searcher(index, embedder), report)
    service.problems = [str(p) for p in loaded.problems]
    service.last_rebuild = time.strftime("%Y-%m-%d %H:%M:%S")
    return service


def serve(service: Service, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the app until interrupted (loopback by default, never a share link)."""
    build_app(service).launch(
        server_name=host, server_port=port, share=False, css=CSS, theme=gr.themes.Default()
    )
