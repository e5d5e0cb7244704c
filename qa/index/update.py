"""Updating an index from a folder of summaries: plan what changed, embed only that, write a delta or a new generation.

Unchanged summaries are not read again (size, modification time and hash in the manifest);
a small update writes a delta on the live generation, a large one (or many deltas) a whole
new generation. A summary that fails to parse keeps its last indexed version."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from qa.corpus.chunking import CHUNKER_VERSION, Chunk, chunk_document, sections
from qa.corpus.documents import Document, FileStat, LoadResult, load_folder, safe_text
from qa.errors import IndexStateError
from qa.index.files import (
    MANIFEST,
    clean_leftovers,
    utc_now,
    write_manifest_quietly,
)
from qa.index.folder import guard_update, writer_lock
from qa.index.store import Index
from qa.index.vectorstore import choose_store
from qa.index.writing import (
    Progress,
    RetryCache,
    UpdateJob,
    backfill_sentences,
    embed,
    fits_delta,
    save_delta,
    save_generation,
)
from qa.models.embedding import Embedder

#: Passages one summary may become; the longest thread page makes 76. A 10 MB file
#: made 11,757 (five times the whole corpus) before this limit.
MAX_PASSAGES = 300


@dataclass
class UpdateReport:
    """What an index update did."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    kept_broken: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "name: why", over a limit
    embedded_chunks: int = 0
    rebuilt_reason: str = ""
    problems: list[str] = field(default_factory=list)  # files skipped while reading, and why
    warnings: list[str] = field(default_factory=list)  # "file: field: what was wrong", yet indexed
    #: Removed summaries now found in a subfolder (which is not read): "name → sub/name".
    moved: list[str] = field(default_factory=list)
    files_read: int = 0  # summary files opened (unchanged ones are judged by size and mtime)

    @property
    def touched(self) -> bool:
        """Whether anything on disk changed."""
        return bool(self.added or self.changed or self.removed or self.rebuilt_reason)

    def summary(self) -> str:
        """One line of counts for people."""
        text = (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged; {self.embedded_chunks} passages embedded"
        )
        if self.kept_broken:
            text += f"; {len(self.kept_broken)} unreadable file(s) kept at their last good version"
        if self.moved:
            text += f"; moved into a subfolder, which is not read: {', '.join(self.moved)}"
        if self.refused:
            text += f"; refused {'; '.join(self.refused)}"
        return text


def compatible(index: Index, embedder: Embedder) -> str:
    """Why `index` cannot be updated in place with `embedder` ('' if it can)."""
    if index.model != embedder.name or index.manifest["dimension"] != embedder.dimension:
        return f"the model changed ({index.model} → {embedder.name})"
    if index.manifest.get("chunker_version") != CHUNKER_VERSION:
        return "the chunker changed"
    return ""


def update_index(
    folder: Path,
    loaded: LoadResult,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    switch_docs: bool = False,
    progress: Progress | None = None,
    retry: RetryCache | None = None,
) -> tuple[Index, UpdateReport]:
    """Bring the index in `folder` up to date with `loaded`, embedding only what changed.

    A file that can no longer be parsed keeps its previously indexed passages, so a bad
    edit never loses data; a file that is gone is removed. Reading another summaries folder
    than the recorded one, or removing more than half of the summaries, needs `switch_docs`
    (or `rebuild`); an empty folder never empties the index.
    """
    with writer_lock(folder):
        clean_leftovers(folder)
        job = UpdateJob(folder, embedder, rebuild, switch_docs or rebuild, progress, retry or RetryCache())
        return _update(job, loaded)


def _load_or_none(folder: Path) -> Index | None:
    try:  # kept only to carry over files that are unreadable now (never lose indexed data)
        return Index.load(folder) if (folder / MANIFEST).exists() else None
    except IndexStateError:
        return None


#: A file modified this recently may be written again within the file system's timestamp
#: granularity without its mtime changing (git's "racily clean" case): its stat is not trusted.
RACY_NS = 2_000_000_000


def stat_fields(stat: FileStat | None) -> dict:
    """The manifest fields that let the next update skip an unchanged file without reading it."""
    if stat is None or time.time_ns() - stat.mtime_ns < RACY_NS:
        return {}  # no stat: the next update hashes the file
    return stat._asdict()


def refresh_stats(known: dict[str, dict], loaded: LoadResult) -> bool:
    """Record the current stats of files judged unchanged (touched ones); return whether any moved."""
    moved = False
    for doc_id in loaded.unchanged:
        entry = known[doc_id]
        fresh = stat_fields(loaded.stats.get(doc_id))
        if fresh != {k: entry[k] for k in FileStat._fields if k in entry}:
            for name in FileStat._fields:
                entry.pop(name, None)
            entry.update(fresh)
            moved = True
    return moved


def _parse_unchanged(loaded: LoadResult) -> LoadResult:
    """`loaded` with its unparsed unchanged files read and parsed too."""
    paths = list(loaded.unchanged.values())
    extra = load_folder(paths[0].parent, paths)
    return LoadResult(
        loaded.documents + extra.documents,
        loaded.problems + extra.problems,
        loaded.folder,
        {},
        {**loaded.stats, **extra.stats},
        loaded.read + extra.read,
    )


def update_folder(
    folder: Path,
    docs: Path,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    switch_docs: bool = False,
    progress: Progress | None = None,
    current: Index | None = None,
    compact: bool = False,
    retry: RetryCache | None = None,
) -> tuple[Index, UpdateReport]:
    """Read the summaries in `docs` and update the index in `folder`, reading only what changed.

    Files whose size and modification time match the manifest are not opened; files whose
    bytes hash the same are not parsed; only changed and added summaries are parsed and embedded.
    Skipped files are in `report.problems`. `current`, the index the caller has loaded from
    `folder`, is returned as it is when nothing changed, so no change costs no index load, and
    is updated in memory (a copy) when it is still the live one, so its base is not read again.
    A small change is written as a delta; `compact` folds the deltas into a whole new generation.
    `retry` keeps what a failed save embedded, for the next call with it.
    """
    with writer_lock(folder):
        manifest: dict = {}
        if not rebuild:
            try:
                manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                manifest = {}  # no or a damaged manifest: read everything
        clean_leftovers(folder, manifest if isinstance(manifest, dict) else None)
        known = manifest.get("documents") if isinstance(manifest, dict) else None
        loaded = load_folder(docs, known=known if isinstance(known, dict) else {})
        pending = compact and bool(manifest.get("deltas")) if isinstance(manifest, dict) else False
        if (
            current is not None
            and not rebuild
            and not pending
            and _nothing_to_do(current, manifest, loaded, embedder)
        ):
            report = UpdateReport(unchanged=len(loaded.unchanged), files_read=loaded.read)
            if refresh_stats(manifest["documents"], loaded):
                manifest["updated_at"] = utc_now()
                write_manifest_quietly(folder, manifest)
            current.manifest = manifest  # the same generation; only stats may differ
            return current, report
        job = UpdateJob(
            folder, embedder, rebuild, switch_docs or rebuild, progress, retry or RetryCache(), compact
        )
        return _update(job, loaded, current, manifest)


def _nothing_to_do(current: Index, manifest: dict, loaded: LoadResult, embedder: Embedder) -> bool:
    """Whether `loaded` found every summary of the live generation unchanged, and `current` is it."""
    return (
        isinstance(manifest, dict)
        and current.manifest.get("generation") == manifest.get("generation")
        and not compatible(current, embedder)
        and not loaded.documents
        and not loaded.problems
        and set(loaded.unchanged) == set(manifest.get("documents") or {})
        and str(loaded.folder) == manifest.get("docs")
        and current.sentences is not None
    )


def _chunk_within_limit(doc: Document, embedder: Embedder, report: UpdateReport) -> list[Chunk] | None:
    """The chunks of `doc`, or None (and a line in `report.refused`) when over `MAX_PASSAGES`."""
    # A cheap lower bound first (a section makes at least one passage, a word at least one
    # token), so a huge summary is refused before thousands of tokenizer calls.
    parts = sections(doc)
    floor = max(len(parts), sum(len(part.text.split()) for part in parts) // embedder.max_tokens)
    count = floor if floor > MAX_PASSAGES else 0
    chunks = [] if count else chunk_document(doc, embedder.max_tokens, embedder.count_tokens)
    count = count or len(chunks)
    if count <= MAX_PASSAGES:
        return chunks
    report.refused.append(
        f"{doc.doc_id}: it makes {'at least ' if floor > MAX_PASSAGES else ''}{count:,} passages; "
        f"the limit for one summary is {MAX_PASSAGES}"
    )
    return None


@dataclass
class Plan:
    """What an update found to do: the summaries to embed and those kept at their last good version."""

    loaded: LoadResult
    todo: list[tuple[Document, list[Chunk]]]
    broken: set[str]
    stats_moved: bool


def _update(
    job: UpdateJob, loaded: LoadResult, live: Index | None = None, live_manifest: dict | None = None
) -> tuple[Index, UpdateReport]:
    """The update itself, under the writer lock: plan → remove → embed → write a delta or a generation.

    `live`: the caller's loaded index, used instead of reading the base from disk when
    `live_manifest` (just read from disk) says it is still live.
    """
    report = UpdateReport()
    index, previous = _open_base(job, report, live, live_manifest)
    plan = plan_update(job, index, previous, loaded, report)
    removed_ids, removed_chunks = take_out(index, report)
    new_chunks = assign_ids(index, plan, previous, report)
    if not index.vectors.ntotal and not index.chunks:
        # A full build: the kind of store its size calls for (exact, or approximate past 100k).
        index.vectors = choose_store(len(new_chunks), job.embedder.dimension)
    embed(index, new_chunks, job)
    report.embedded_chunks = len(new_chunks)

    docs = str(plan.loaded.folder) if plan.loaded.folder is not None else index.manifest.get("docs")
    moved = docs != index.manifest.get("docs")
    if docs:
        index.manifest["docs"] = docs
    fold = job.compact and bool(index.manifest.get("deltas"))
    if (
        (report.touched or moved)
        and not job.compact
        and fits_delta(index, bool(report.rebuilt_reason), previous)
    ):
        # Only what changed is written; the base files stay as they are.
        save_delta(index, job, removed_ids, removed_chunks, new_chunks)
    elif report.touched or moved or fold or not (job.folder / MANIFEST).exists():
        # A whole generation: a first build, a rebuild, or the deltas grew past their share.
        save_generation(index, job, bool(report.rebuilt_reason), new_chunks)
    else:
        backfill_sentences(index, job.embedder)  # an index from before sentence vectors
        if plan.stats_moved:  # touched files: record their new stats so the next update skips them
            index.manifest = {**index.manifest, "updated_at": utc_now()}
            write_manifest_quietly(job.folder, index.manifest)
    return index, report


def _open_base(
    job: UpdateJob, report: UpdateReport, live: Index | None, live_manifest: dict | None
) -> tuple[Index, Index | None]:
    """The index to update (a fork of the live one, or a new empty one), and the previous index
    when starting empty (its unreadable files' passages are carried over)."""
    index: Index | None = None
    if not job.rebuild and (job.folder / MANIFEST).exists():
        try:
            if live is not None and live_manifest and _same_generation(live.manifest, live_manifest):
                index = live.fork(live_manifest)
            else:
                loaded_index = Index.load(job.folder)
                index = loaded_index.fork(loaded_index.manifest)
                index.parent = None  # not an index any searcher uses
            report.rebuilt_reason = compatible(index, job.embedder)
        except IndexStateError as exc:
            report.rebuilt_reason = str(exc)
        if report.rebuilt_reason:
            index = None
    elif job.rebuild:
        report.rebuilt_reason = "asked to rebuild"
    if index is not None:
        return index, None
    return Index.empty(job.folder, job.embedder), _load_or_none(job.folder)


def plan_update(
    job: UpdateJob, index: Index, previous: Index | None, loaded: LoadResult, report: UpdateReport
) -> Plan:
    """Sort the read summaries into unchanged, added, changed, removed and kept-broken (in `report`)."""
    report.problems = [str(p) for p in loaded.problems]
    report.files_read = loaded.read
    if any(doc_id not in index.documents for doc_id in loaded.unchanged):
        # Recognised as unchanged against another state (a rebuild, a damaged index): parse them.
        loaded = _parse_unchanged(loaded)
        report.files_read = loaded.read
    current = {doc.doc_id: doc for doc in loaded.documents}
    report.warnings = [f"{doc.path}: {warning}" for doc in loaded.documents for warning in doc.warnings]
    broken = {safe_text(p.path.name) for p in loaded.problems}
    guard_update(job.folder, loaded, index if index.documents else previous, broken, job.switch)
    known = index.documents
    stats_moved = refresh_stats(known, loaded)
    report.unchanged += len(loaded.unchanged)
    todo: list[tuple[Document, list[Chunk]]] = []
    for doc_id, doc in current.items():
        entry = known.get(doc_id)
        if entry is not None and entry["hash"] == doc.content_hash:
            report.unchanged += 1
            continue
        chunks = _chunk_within_limit(doc, job.embedder, report)
        if chunks is None:
            broken.add(doc_id)  # like an unreadable file: its last good version stays
            continue
        (report.added if entry is None else report.changed).append(doc_id)
        todo.append((doc, chunks))
    for doc_id in list(known):
        if (doc_id in current or doc_id in loaded.unchanged) and doc_id not in broken:
            continue
        (report.kept_broken if doc_id in broken else report.removed).append(doc_id)
    report.moved = _moved_into_subfolders(loaded.folder, report.removed)
    return Plan(loaded, todo, broken, stats_moved)


def _moved_into_subfolders(folder: Path | None, removed: list[str]) -> list[str]:
    """Removed summaries whose file now sits in a subfolder of `folder` (subfolders are not read)."""
    if folder is None or not removed:
        return []
    try:
        subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    return [f"{name} → {sub.name}/{name}" for name in removed for sub in subfolders if (sub / name).is_file()]


def take_out(index: Index, report: UpdateReport) -> tuple[list[int], list[tuple[int, Chunk]]]:
    """Take the passages of removed and changed summaries out of `index`; their ids and chunks."""
    known = index.documents
    removed_ids = [cid for doc_id in report.removed + report.changed for cid in known.pop(doc_id)["chunks"]]
    removed_chunks = [(cid, index.chunks[cid]) for cid in removed_ids if cid in index.chunks]
    index.vectors.remove(removed_ids)
    for cid in removed_ids:
        index.chunks.pop(cid, None)
    return removed_ids, removed_chunks


def assign_ids(
    index: Index, plan: Plan, previous: Index | None, report: UpdateReport
) -> list[tuple[int, Chunk]]:
    """Give the passages to embed their ids and record their summaries in the manifest."""
    known = index.documents
    new_chunks: list[tuple[int, Chunk]] = []
    next_id = index.manifest["next_id"]
    for doc, chunks in plan.todo:
        ids = list(range(next_id, next_id + len(chunks)))
        next_id += len(chunks)
        known[doc.doc_id] = {
            "hash": doc.content_hash,
            "path": safe_text(str(doc.path)),
            "chunks": ids,
            **stat_fields(plan.loaded.stats.get(doc.doc_id)),
        }
        new_chunks.extend(zip(ids, chunks))
    if previous is not None:
        # A full rebuild: files unreadable now keep the passages they had, embedded anew.
        for doc_id in sorted(plan.broken & set(previous.documents)):
            chunks = previous.chunks_of(doc_id)
            ids = list(range(next_id, next_id + len(chunks)))
            next_id += len(chunks)
            known[doc_id] = {**previous.documents[doc_id], "chunks": ids}
            new_chunks.extend(zip(ids, chunks))
            report.kept_broken.append(doc_id)
    index.manifest["next_id"] = next_id
    return new_chunks


def _same_generation(manifest: dict, live_manifest: dict) -> bool:
    return isinstance(live_manifest, dict) and manifest.get("generation") == live_manifest.get("generation")
