"""One service layer that opens, updates and searches an index, for the CLI, the app, eval and bench."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from qa.config import DEFAULT_K
from qa.corpus.chunking import sections
from qa.corpus.documents import Citation, Document, is_summary_name, load_document, safe_text
from qa.errors import DocumentError, QAError
from qa.index.files import MANIFEST
from qa.index.postgres import PgStore, update_postgres
from qa.index.store import Index, follow_index
from qa.index.update import Progress, RetryCache, UpdateReport, update_folder
from qa.models.embedding import Embedder, get_embedder
from qa.models.light import query_embedder
from qa.present.highlight import Highlights, highlight_answer
from qa.search.pipeline import Searcher, vocabulary_text
from qa.search.stages import MULTILINGUAL
from qa.search.types import Answer, Filters, SearchSettings

#: How often a server looks for an index another process updated (one `stat` of the manifest).
FOLLOW_SECONDS = 0.5


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
    #: Pick up generations another process (`qa index`, another server's watcher) writes.
    follow: bool = True
    _seen: tuple = ()  # the manifest's (inode, mtime, size) when the searcher was loaded
    _reloading: threading.Lock = field(default_factory=threading.Lock)
    #: What a failed update embedded, reused by the next try (the watcher, the Rebuild button).
    retry: RetryCache = field(default_factory=RetryCache)
    #: Whether this process may write into the index folder. A reader (`--no-update`) never
    #: does: the folder may be a read-only mount; derived data it needs stays in memory.
    writes: bool = True
    #: The first build's progress while `build_in_background` runs (None otherwise).
    building: BuildProgress | None = None
    _built: threading.Event = field(default_factory=threading.Event)
    #: The index in PostgreSQL (`--store URL`) instead of the files in `index_dir`.
    store: PgStore | None = None

    @property
    def ready(self) -> bool:
        """Whether there is an index to search (False only while the first build runs)."""
        return self.searcher is not None

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the first build; whether there is an index to search."""
        if not self.ready and self.building is not None:
            self._built.wait(timeout)
        return self.ready

    def build_in_background(self, progress: Progress | None = None) -> threading.Thread:
        """Build the index in a thread, so a server listens (and shows this progress) at once."""
        building = self.building = BuildProgress(time.monotonic())

        def run() -> None:
            def report(done: int, total: int, what: str) -> None:
                building.record(done, total)
                if progress is not None:
                    progress(done, total, what)

            try:
                self.rebuild(report)
                for problem in self.problems:
                    print(f"warning: skipped {problem}", flush=True)
                print(f"index ready: {self.last_report.summary()}", flush=True)
            except Exception as exc:  # the page says so; the operator reads why here
                building.failed = safe_text(str(exc))
                print(f"error: the index could not be built ({building.failed})", flush=True)
            finally:
                self._built.set()

        thread = threading.Thread(target=run, name="qa-first-build", daemon=True)
        thread.start()
        return thread

    def ask(self, question: str, filters: Filters = Filters(), k: int = DEFAULT_K) -> Answer:
        """Search with the current index (reloaded in the background when another process updates it)."""
        if not self.ready:
            raise NotReady(self.building.text() if self.building else "there is no index to search yet")
        if self.store is None:  # PostgreSQL is asked by the follow loop, not once more per question
            self.check_for_update()
        return self.searcher.search(question, k=k, filters=filters)

    def make_searcher(self, index: Index) -> Searcher:
        """A searcher over `index` with this service's settings, warmed so its first question is fast.

        When `index` is the current one updated in this process, the vocabulary and the
        multilingual stage follow the change instead of being learned again from every passage.
        """
        old = self.searcher
        change = index.change_from(old.index) if old is not None else index.change_from(index)
        if old is not None and change is not None:
            return _updated_searcher(old, index, change, self.embedder, self.settings, self.writes)
        # A writer's server embeds the multilingual stage in the background: English answers
        # come at once (issue "One pass"); a reader opens it on first use.
        searcher = open_searcher(
            index, self.embedder, self.settings, writes=self.writes, background=self.writes
        )
        searcher.vocabulary  # noqa: B018  (learned once here, not in a visitor's request)
        return searcher

    def _manifest_key(self) -> tuple:
        if self.store is not None:
            try:
                return (self.store.generation(),)
            except QAError:  # down for now: the next check tries again
                return ()
        try:
            st = os.stat(self.index_dir / MANIFEST)
        except OSError:
            return ()
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def check_for_update(self) -> None:
        """If the manifest changed on disk, load the new generation in the background.

        One `stat` per question (microseconds); the current searcher answers until the new
        one is ready, then is swapped whole, so no request waits or fails during an update.
        """
        if not self.follow or self.searcher is None:
            return
        key = self._manifest_key()
        if not key or key == self._seen or not self._reloading.acquire(blocking=False):
            return
        threading.Thread(target=self._reload, args=(key,), name="qa-reload", daemon=True).start()

    def follow_in_background(self, stop: threading.Event, every: float = FOLLOW_SECONDS) -> threading.Thread:
        """Check for another process's update every `every` seconds, not only when a question
        comes: the first question after a switch is then answered from the new index."""

        def loop() -> None:
            while not stop.wait(every):
                try:
                    self.check_for_update()
                except Exception as exc:  # keep following: the next check may succeed
                    print(
                        f"warning: could not check for an updated index ({safe_text(str(exc))})", flush=True
                    )

        thread = threading.Thread(target=loop, name="qa-follow", daemon=True)
        thread.start()
        return thread

    def _reload(self, key: tuple) -> None:
        try:
            for attempt in range(5):
                try:
                    # Only the deltas written since, when the writer added nothing else.
                    current = self.searcher.index
                    index = (
                        self.store.follow(current)
                        if self.store is not None
                        else follow_index(self.index_dir, current)
                    )
                    break
                except QAError:  # the writer removed a generation between manifest and files
                    if attempt == 4:
                        raise
                    time.sleep(0.2)
                    key = self._manifest_key()
            index.check_model(self.embedder)
            if index.manifest.get("generation") != self.searcher.index.manifest.get("generation"):
                self.searcher = self.make_searcher(index)
                print(f"loaded index generation {index.manifest.get('generation')}", flush=True)
            self._seen = key
        except QAError as exc:  # keep answering from the loaded generation
            self.problems.append(f"reloading {self.index_dir}: {exc}")
            print(
                f"warning: could not load the updated index ({exc}); still serving the last one", flush=True
            )
            self._seen = key
        finally:
            self._reloading.release()

    def open(self) -> None:
        """Load the index as it is on disk, without reading the summaries (a reader process)."""
        key = self._manifest_key()
        index = self.store.load() if self.store is not None else Index.load(self.index_dir)
        index.check_model(self.embedder)
        self.searcher, self._seen = self.make_searcher(index), key

    def highlights(self, answer: Answer) -> Highlights:
        """Per study rank, the marked sentences of each shown passage."""
        return highlight_answer(self.embedder, answer, self.searcher.index.sentences)

    def citations(self, doc_ids: list[str]) -> list[Citation]:
        """The citations of indexed studies, in the order given."""
        index = self.searcher.index
        return [chunks[0].citation for d in doc_ids if (chunks := index.chunks_of(d))]

    def summary(self, doc_id: str) -> tuple[Document, list[tuple[str, str]]] | None:
        """A whole summary and its sections (from its file, else from the index); None if not indexed."""
        index = self.searcher.index
        chunks = index.chunks_of(doc_id)
        if not chunks:
            return None
        try:
            doc = load_document(self.docs / doc_id, self.docs)  # never a link out of the folder
            return doc, [(sec.heading, sec.text) for sec in sections(doc)]
        except DocumentError:  # removed or broken since: what the index holds
            doc = Document.from_citation(doc_id, self.docs / doc_id, chunks[0].citation)
            return doc, [(ch.section, ch.text) for ch in chunks]

    def rebuild(self, progress=None, compact: bool = False) -> UpdateReport:
        """Re-read the summaries, update the index, and swap it in without a restart.

        A small change is written as a delta and the searcher follows it without relearning
        the corpus; `compact` folds the deltas into a whole new generation.
        """
        with self.lock:
            # Only changed summaries are read (size and modification time first, then the hash).
            current = self.searcher.index if self.searcher is not None else None
            if self.store is not None:
                index, report = update_postgres(
                    self.store, self.docs, self.embedder, progress=progress, current=current, retry=self.retry
                )
            else:
                index, report = update_folder(
                    self.index_dir,
                    self.docs,
                    self.embedder,
                    progress=progress,
                    current=current,
                    compact=compact,
                    retry=self.retry,
                )
            self.problems = [*report.problems, *(f"refused {r}" for r in report.refused), *report.warnings]
            self._seen = self._manifest_key()  # this process wrote it: no reload needed
            if index is not current:  # nothing changed: keep the warmed searcher
                self.searcher = self.make_searcher(index)
            self.last_report = report
            self.last_rebuild = time.strftime("%Y-%m-%d %H:%M:%S")
            return report

    def watch(self, stop: threading.Event) -> threading.Thread:
        """Update the index whenever a summary in the folder is added, edited or removed."""
        from watchfiles import watch

        def is_summary(_change, path: str) -> bool:
            return is_summary_name(Path(path).name)

        def loop() -> None:
            while not stop.is_set():
                try:
                    for changes in watch(
                        self.docs, watch_filter=is_summary, stop_event=stop, recursive=False
                    ):
                        settle([Path(p) for _, p in changes], stop)
                        report = self.rebuild()
                        names = ", ".join(sorted(safe_text(Path(p).name) for _, p in changes))
                        print(f"index updated after changes to {names}: {report.summary()}", flush=True)
                except Exception as exc:  # keep watching: one failed update must not end it
                    self.problems.append(f"watching {self.docs}: {safe_text(str(exc))}")
                    print(f"warning: index update failed ({safe_text(str(exc))}); still watching", flush=True)
                    stop.wait(5)
                    # The watcher may have lost that batch (a file name it cannot decode): read the
                    # folder once so the change is still picked up.
                    try:
                        self.rebuild()
                    except Exception as again:  # reported; the old index stays live
                        print(f"warning: index update failed ({safe_text(str(again))})", flush=True)

        thread = threading.Thread(target=loop, name="qa-watch", daemon=True)
        thread.start()
        return thread

    def status(self) -> IndexStatus:
        """What the "About this index" panel shows: counts, folder, dates, model, last rebuild, problems."""
        index: Index = self.searcher.index
        m = index.manifest
        last = f"{self.last_rebuild}: {self.last_report.summary()}" if self.last_report else ""
        return IndexStatus(
            summaries=len(index.documents),
            passages=len(index.chunks),
            folder=str(self.docs),
            built=m.get("built_at", "?"),
            updated=m.get("updated_at", "?"),
            model=index.model,
            last_rebuild=last,
            problems=tuple(self.problems),
        )


class NotReady(QAError):
    """A question came while the first build was still running."""


@dataclass
class BuildProgress:
    """How far the first build has come, for the page (changed by the build's thread only)."""

    started: float  # time.monotonic() at the start
    done: int = 0  # passages embedded
    total: int = 0  # passages to embed (0 while the summaries are still being read)
    first: tuple[float, int] | None = None  # (time, done) at the first report, for the rate
    failed: str = ""  # why the build failed, if it did

    def record(self, done: int, total: int) -> None:
        """A progress report from the build."""
        self.done, self.total = done, total
        if self.first is None:
            self.first = (time.monotonic(), done)

    def text(self) -> str:
        """The progress in words: what is done and, once the rate is known, about how long is left."""
        if self.failed:
            return f"The summaries could not be prepared for searching: {self.failed}"
        if not self.total:
            return "The summaries are being read, to prepare them for searching."
        said = "The summaries are being prepared for searching: "
        if self.done >= self.total:  # the steps after the passages are not counted: no time left
            return f"{said}all {self.total:,} passages are done; the index is being finished."
        said += f"{self.done:,} of {self.total:,} passages done"
        if self.first is not None and self.done > self.first[1]:
            rate = (self.done - self.first[1]) / max(time.monotonic() - self.first[0], 1e-3)
            left = (self.total - self.done) / rate
            said += f", about {_duration(left)} left"
        return said + "."


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(5, round(seconds / 5) * 5):.0f} seconds"
    minutes = round(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


#: A changed file is read once its size and modification time held still this long: an editor
#: or a copy writing it in several steps is not caught half-way (1 of 7 passages was served).
SETTLE_SECONDS = 1.0
#: ... but never waited for longer than this (a file written to forever, a log).
SETTLE_LIMIT = 30.0


def settle(paths: list[Path], stop: threading.Event | None = None, quiet: float = SETTLE_SECONDS) -> None:
    """Wait until none of `paths` has changed (size, modification time) for `quiet` seconds."""
    stop = stop or threading.Event()

    def state() -> list[tuple[int, int] | None]:
        out = []
        for path in paths:
            try:
                info = path.stat()
                out.append((info.st_size, info.st_mtime_ns))
            except OSError:  # removed, or renamed away: nothing to wait for
                out.append(None)
        return out

    deadline, last = time.monotonic() + SETTLE_LIMIT, state()
    while time.monotonic() < deadline and not stop.wait(quiet):
        now = state()
        if now == last:
            return
        last = now


@dataclass(frozen=True)
class IndexStatus:
    """The state of a service's index, as data (the app words it)."""

    summaries: int
    passages: int
    folder: str
    built: str
    updated: str
    model: str
    last_rebuild: str = ""
    problems: tuple[str, ...] = ()


def open_searcher(
    index: Index,
    embedder: Embedder,
    settings: SearchSettings | None = None,
    writes: bool = True,
    background: bool = False,
) -> Searcher:
    """A `Searcher` with every stage the settings ask for, for the app, the CLI, eval and bench.

    The multilingual stage keeps its own vectors in the index folder; the first open embeds the
    summaries' titles and Summary sections once (about a minute for 317), later opens only what
    changed. A reader (`writes=False`) never writes them: it opens the stage on the first
    question in another language and keeps what it embeds in memory. With `background`, a
    writer opens it in a thread and answers English questions meanwhile.
    """
    settings = settings or SearchSettings()
    searcher = Searcher(index, embedder, settings)
    return _add_stage(searcher, index, writes, background) if settings.multilingual else searcher


def _updated_searcher(
    old: Searcher,
    index: Index,
    change: tuple[list, list],
    embedder: Embedder,
    settings: SearchSettings,
    writes: bool = True,
) -> Searcher:
    """A searcher over `index`, an update of `old.index`: its vocabulary and stages updated by `change`.

    `old` keeps answering meanwhile and is never modified.
    """
    removed, added = change
    vocabulary = old.vocabulary.updated(
        [vocabulary_text(c) for _, c in removed], [vocabulary_text(c) for _, c in added]
    )
    searcher = Searcher(index, embedder, settings, reranker=old.reranker, vocabulary=vocabulary)
    if settings.multilingual:
        from qa.models.multilingual import LazyStage

        stage = old.retriever(MULTILINGUAL)
        if stage is None or (isinstance(stage, LazyStage) and not stage.ready):
            return _add_stage(searcher, index, writes, background=writes)
        searcher.add_retriever(MULTILINGUAL, _updated_stage(stage, index, removed, added, writes))
    return searcher


def _add_stage(searcher: Searcher, index: Index, writes: bool, background: bool = False) -> Searcher:
    """Register the multilingual stage of `index`: opened now (or in the background) by a writer,
    on first use by a reader."""
    from qa.models.multilingual import BackgroundStage, LazyStage, open_stage

    chunks = index.chunks

    def opener():  # noqa: ANN202
        return open_stage(index.folder, chunks, save=writes)

    if not writes:  # a reader: on the first question in another language, kept in memory
        searcher.add_retriever(MULTILINGUAL, LazyStage(opener))
    elif background:  # a server that updates: English answers meanwhile
        searcher.add_retriever(MULTILINGUAL, BackgroundStage(opener))
    else:  # eval, bench, `qa ask --docs`: ready before the first question
        searcher.add_retriever(MULTILINGUAL, opener())
    return searcher


def _updated_stage(stage, index: Index, removed: list, added: list, writes: bool = True):  # noqa: ANN001, ANN202
    """A copy of the multilingual stage with the changed passages re-embedded, saved beside the
    index by a writer."""
    from qa.models.multilingual import MultilingualStage, chosen_texts, save_quietly

    retriever = stage.retriever.copy()
    retriever.remove([cid for cid, _ in removed])
    if (retriever.add(chosen_texts(dict(added))) or removed) and writes:
        save_quietly(retriever, index.folder)
    return MultilingualStage(retriever)


def make_service(
    docs: Path,
    index_dir: Path,
    model: str = "",
    progress: Progress | None = None,
    settings: SearchSettings | None = None,
    update: bool = True,
    background: bool = False,
    store: str = "",
) -> Service:
    """Bring the index up to date with `docs` (unless `update` is False) and return a ready `Service`.

    An existing index is served with the numpy query model (`qa/models/light.py`: no torch, a fast
    start); building one from nothing uses sentence-transformers, faster for thousands of passages.
    With `background`, a first build runs in a thread and the service is returned at once, not
    ready yet (`Service.ready`, `Service.building`): a server listens while it builds.
    `store`, a `postgresql://` URL, keeps the index in PostgreSQL instead of `index_dir`.
    """
    pg = PgStore(store) if store else None
    if pg is not None:
        index_dir = pg.cache  # what this process keeps beside the index; servers are found by it
    exists = pg.exists() if pg is not None else (index_dir / MANIFEST).exists()
    embedder = query_embedder(model) if exists else get_embedder(model)
    service = Service(
        docs, index_dir, embedder, settings=settings or SearchSettings(), writes=update, store=pg
    )
    if update and background and not exists:
        service.build_in_background(progress)
    elif update:
        service.rebuild(progress)
    else:
        service.open()
    return service
