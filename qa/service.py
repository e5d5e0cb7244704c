"""One service layer that opens, updates and searches an index, for the CLI, the app, eval and bench."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from qa.chunking import sections
from qa.config import DEFAULT_K
from qa.documents import SUFFIXES, Citation, Document, load_document, load_folder
from qa.embedding import Embedder, get_embedder
from qa.errors import DocumentError
from qa.highlight import Highlights, highlight_answer
from qa.index import Index, Progress, UpdateReport, update_index
from qa.render import source_html, text_html
from qa.search import Answer, Filters, Searcher, SearchSettings


@dataclass
class Service:
    """The app's state: the current searcher, swapped whole when the index is rebuilt."""

    docs: Path
    index_dir: Path
    embedder: Embedder
    searcher: Searcher | None = None  # set by `rebuild`, then swapped whole
    last_report: UpdateReport | None = None
    last_rebuild: str = ""
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    settings: SearchSettings = field(default_factory=SearchSettings)

    def ask(self, question: str, filters: Filters = Filters(), k: int = DEFAULT_K) -> Answer:
        """Search with the current index."""
        return self.searcher.search(question, k=k, filters=filters)

    def highlights(self, answer: Answer) -> Highlights:
        """Per study rank, the marked sentences of each shown passage."""
        return highlight_answer(self.embedder, answer, self.searcher.index.sentences)

    def citations(self, doc_ids: list[str]) -> list[Citation]:
        """The citations of indexed studies, in the order given."""
        index = self.searcher.index
        return [chunks[0].citation for d in doc_ids if (chunks := index.chunks_of(d))]

    def source(self, doc_id: str) -> str:
        """HTML of a whole summary for the source view (from its file, else from the index)."""
        index = self.searcher.index
        chunks = index.chunks_of(doc_id)
        if not chunks:
            return "<p>That study is no longer in the index.</p>"
        try:
            doc = load_document(self.docs / doc_id)
            parts = [(sec.heading, sec.text) for sec in sections(doc)]
        except DocumentError:  # removed or broken since: show what the index holds
            doc = Document.from_citation(doc_id, self.docs / doc_id, chunks[0].citation)
            parts = [(ch.section, ch.text) for ch in chunks]
        return source_html(doc, parts)

    def rebuild(self, progress=None) -> UpdateReport:
        """Re-read the summaries, update the index, and swap it in without a restart."""
        with self.lock:
            loaded = load_folder(self.docs)
            self.problems = [str(p) for p in loaded.problems]
            index, report = update_index(self.index_dir, loaded, self.embedder, progress=progress)
            self.searcher = Searcher(index, self.embedder, self.settings)
            self.last_report = report
            self.last_rebuild = time.strftime("%Y-%m-%d %H:%M:%S")
            return report

    def watch(self, stop: threading.Event) -> threading.Thread:
        """Update the index whenever a summary in the folder is added, edited or removed."""
        from watchfiles import watch

        def is_summary(_change, path: str) -> bool:
            return path.lower().endswith(SUFFIXES)

        def loop() -> None:
            while not stop.is_set():
                try:
                    for changes in watch(
                        self.docs, watch_filter=is_summary, stop_event=stop, recursive=False
                    ):
                        report = self.rebuild()
                        names = ", ".join(sorted(Path(p).name for _, p in changes))
                        print(f"index updated after changes to {names}: {report.summary()}", flush=True)
                except Exception as exc:  # keep watching: one failed update must not end it
                    self.problems.append(f"watching {self.docs}: {exc}")
                    print(f"warning: index update failed ({exc}); still watching", flush=True)
                    stop.wait(5)

        thread = threading.Thread(target=loop, name="qa-watch", daemon=True)
        thread.start()
        return thread

    def about(self) -> str:
        """Markdown for the "About this index" panel."""
        index: Index = self.searcher.index
        m = index.manifest
        lines = [
            f"- **Summaries:** {len(index.documents)} ({len(index.chunks)} passages)",
            f"- **Folder:** {text_html(str(self.docs))}",
            f"- **Built:** {m.get('built_at', '?')}; **updated:** {m.get('updated_at', '?')}",
            f"- **Model:** {text_html(index.model)}",
        ]
        if self.last_report:
            lines.append(f"- **Last rebuild:** {self.last_rebuild}: {self.last_report.summary()}")
        for problem in self.problems:
            lines.append(f"- **Skipped:** {text_html(problem)}")
        return "\n".join(lines)


def make_service(
    docs: Path,
    index_dir: Path,
    model: str = "",
    progress: Progress | None = None,
    settings: SearchSettings | None = None,
) -> Service:
    """Bring the index up to date with `docs` and return a ready `Service`."""
    service = Service(docs, index_dir, get_embedder(model), settings=settings or SearchSettings())
    service.rebuild(progress)
    return service
