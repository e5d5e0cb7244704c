"""The index on disk: FAISS vectors, BM25 keywords, chunks and a manifest; built and updated.

Files of one generation (`vectors-N.faiss`, `chunks-N.jsonl`, `keywords-N/`, `studies-N/`) are written
first; `manifest.json`, which names the generation, is replaced last with an atomic rename.
A small update writes only a delta (`delta-N.*`, qa/index/segments.py) on top of the live generation's
files, listed in the manifest (`"base"`, `"deltas"`), so it costs what changed; past a share of
the index the deltas are folded into a whole new generation.
A crash at any point leaves the previous index readable; a failed write removes what it wrote,
and the next writer removes what a crash left (temp files, generations that never went live).
The manifest also records the summaries folder the index follows (`resolve_docs`).
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.corpus.chunking import CHUNKER_VERSION, Chunk, chunk_document, sections
from qa.corpus.documents import SUFFIXES, Citation, Document, FileStat, LoadResult, load_folder, safe_text
from qa.errors import IndexStateError
from qa.index import sentences
from qa.index.keywords import KeywordIndex
from qa.index.segments import COMPACT_SHARE, MAX_DELTAS, LayeredKeywords, LayeredStore, flatten
from qa.index.vectorstore import ExactStore, VectorStore, choose_store, load_store, refit
from qa.models.embedding import Embedder

FORMAT = 1
MANIFEST = "manifest.json"
_GENERATION = re.compile(r"^(?:vectors|chunks|keywords|studies|sentences|delta)-(\d+)")
_TEMP = re.compile(r"^\.manifest-.*\.tmp$")
#: Passages one summary may become; the longest thread page makes 76. A 10 MB file
#: made 11,757 (five times the whole corpus) before this limit.
MAX_PASSAGES = 300
SWITCH_HINT = "--switch-docs"

# Files are written with the process's usual mode (0644 under the common umask 022); mkstemp
# would make the manifest 0600 unlike the rest. Read once at import, when no thread runs yet.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK

# Vectors embedded by an update whose save failed (a full disk), by (model, embedded text):
# the retry from the same process (the server's watcher or Rebuild button) reuses them.
_PENDING: dict[tuple[str, str], np.ndarray] = {}
# The same for sentence vectors (qa/index/sentences.py), by model, then passage text.
_PENDING_SENTENCES: dict[str, dict[str, np.ndarray]] = {}

#: Called with (done, total, what) while an update runs.
Progress = Callable[[int, int, str], None]


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
        if self.refused:
            text += f"; refused {'; '.join(self.refused)}"
        return text


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _chunk_to_json(cid: int, chunk: Chunk) -> str:
    # Chunk and Citation hold only strings and a tuple of strings, so their field dicts serialise
    # as is; dataclasses.asdict deep-copies recursively and took 14 of 17 s per save at 210k passages.
    return json.dumps({"id": cid, **vars(chunk), "citation": vars(chunk.citation)}, ensure_ascii=False)


def _chunk_from_json(line: str) -> tuple[int, Chunk]:
    data = json.loads(line)
    cid = data.pop("id")
    citation = data.pop("citation")
    citation["tags"] = tuple(citation.get("tags", ()))
    return cid, Chunk(citation=Citation(**citation), **data)


class Index:
    """A loaded index: vectors, keyword index, chunks by id, and the manifest."""

    def __init__(
        self,
        folder: Path,
        manifest: dict,
        chunks: dict[int, Chunk],
        vectors: VectorStore,
        keywords: KeywordIndex,
        study_keywords: KeywordIndex,
    ) -> None:
        self.folder = folder
        self.manifest = manifest
        self.chunks = chunks
        self.vectors = vectors
        self.keywords = keywords  # BM25 over passages
        self.study_keywords = study_keywords  # BM25 over whole summaries, ids are doc ids
        self.sentences: sentences.SentenceVectors | None = None  # for highlighting (qa/index/sentences.py)
        self.sentence_rows: tuple[np.ndarray, np.ndarray] | None = None  # to write with a save
        #: The index this one was made from by an update in this process, and what that update
        #: removed and added (chunks), so the searcher's vocabulary can follow without relearning.
        self.parent: Index | None = None
        self.changes: tuple[list[tuple[int, Chunk]], list[tuple[int, Chunk]]] | None = None

    def fork(self, manifest: dict) -> Index:
        """A new Index to update, sharing this one's immutable base; this one is never changed.

        `manifest` must be a fresh copy of this index's manifest (read from disk), since the
        update edits it. Queries may keep running on this index in other threads meanwhile.
        """
        vectors = (
            self.vectors.fork() if isinstance(self.vectors, LayeredStore) else LayeredStore(self.vectors)
        )
        keywords, studies = (
            k.fork() if isinstance(k, LayeredKeywords) else LayeredKeywords(k)
            for k in (self.keywords, self.study_keywords)
        )
        index = Index(self.folder, manifest, dict(self.chunks), vectors, keywords, studies)
        if self.sentences is not None:
            index.sentences = self.sentences.fork()
        index.parent = self
        # Only the newest link is needed (to update the searcher); older ones would pin old indexes.
        self.parent, self.changes = None, None
        return index

    @property
    def model(self) -> str:
        """Name of the model the vectors were made with."""
        return str(self.manifest["model"])

    @property
    def documents(self) -> dict[str, dict]:
        """Per document id: its content hash, path and chunk ids."""
        return self.manifest["documents"]

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """The chunks of one document, in reading order."""
        ids = self.documents.get(doc_id, {}).get("chunks", [])
        return [self.chunks[i] for i in ids if i in self.chunks]

    @classmethod
    def empty(cls, folder: Path, embedder: Embedder) -> Index:
        """A new index with nothing in it, for `embedder`'s model."""
        manifest = {
            "format": FORMAT,
            "model": embedder.name,
            "dimension": embedder.dimension,
            "chunker_version": CHUNKER_VERSION,
            "generation": 0,
            "next_id": 0,
            "built_at": _now(),
            "updated_at": _now(),
            "documents": {},
        }
        vectors: VectorStore = ExactStore(embedder.dimension)
        return cls(folder, manifest, {}, vectors, KeywordIndex.build([], []), KeywordIndex.build([], []))

    @classmethod
    def load(cls, folder: Path) -> Index:
        """Read the index in `folder`; raise `IndexStateError` saying how to fix a problem."""
        _check_folder(folder)
        path = folder / MANIFEST
        rebuild = f"rebuild it with: qa index --rebuild --index {folder}"
        if not path.exists():
            raise IndexStateError(f"no index in {folder}: build one with: qa index --index {folder}")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            base = int(manifest.get("base", manifest["generation"]))  # the full files; then deltas
            vectors = load_store(folder / f"vectors-{base}.faiss", manifest.get("vector_store"))
            with open(folder / f"chunks-{base}.jsonl", encoding="utf-8") as fh:
                chunks = dict(_chunk_from_json(line) for line in fh if line.strip())
            keywords = KeywordIndex.load(folder / f"keywords-{base}")
            studies_dir = folder / f"studies-{base}"
            study_keywords = KeywordIndex.load(studies_dir) if studies_dir.exists() else None
            index = cls(folder, manifest, chunks, vectors, keywords, study_keywords)
            if study_keywords is None:  # written before whole-summary BM25 existed: cheap to derive
                index.study_keywords = build_study_keywords(index)
            index.sentences = sentences.load(folder, base, index)
            if manifest.get("deltas"):
                _apply_deltas(index, [int(g) for g in manifest["deltas"]])
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, IndexStateError) as exc:
            raise IndexStateError(
                f"the index in {folder} is damaged ({type(exc).__name__}: {exc}); {rebuild}"
            ) from None
        if manifest.get("format") != FORMAT or index.vectors.ntotal != len(index.chunks):
            raise IndexStateError(f"the index in {folder} is inconsistent or too old; {rebuild}")
        return index

    def check_model(self, embedder: Embedder) -> None:
        """Raise if the index was built with another model or dimension than `embedder`."""
        if self.model != embedder.name or self.manifest["dimension"] != embedder.dimension:
            raise IndexStateError(
                f"the index in {self.folder} was built with model {self.model!r} "
                f"({self.manifest['dimension']} dimensions) but {embedder.name!r} "
                f"({embedder.dimension}) is in use; rebuild with: "
                f"qa index --rebuild --index {self.folder}, or choose the same model"
            )

    def save(self) -> None:
        """Write a new generation of files, then switch the manifest to it atomically.

        A failed write (a full disk) removes every file it made and raises `IndexStateError`
        saying how much room is needed; the previous index stays live.
        """
        _check_folder(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        live = _live_generation(self.folder)
        # Never reuse a generation that may be on disk (a rebuild starts from 0).
        on_disk = [int(m.group(1)) for p in self.folder.iterdir() if (m := _GENERATION.match(p.name))]
        gen = max([self.manifest.get("generation", 0), live or 0, *on_disk]) + 1
        manifest = {
            **self.manifest,
            "generation": gen,
            "base": gen,
            "deltas": [],
            "previous_generation": live,
            "previous_files": sorted(_live_files(self.folder)),
            "updated_at": _now(),
            "vector_store": self.vectors.describe(),
        }
        vectors = self.vectors.to_bytes()  # written by Python: OSError, errno
        chunks = "".join(_chunk_to_json(cid, chunk) + "\n" for cid, chunk in self.chunks.items())
        written: list[Path] = []
        try:
            for name, data in ((f"vectors-{gen}.faiss", vectors), (f"chunks-{gen}.jsonl", chunks.encode())):
                written.append(self.folder / name)
                _write_file(self.folder / name, data)
            for name, keywords in (("keywords", self.keywords), ("studies", self.study_keywords)):
                written.append(self.folder / f"{name}-{gen}")
                shutil.rmtree(written[-1], ignore_errors=True)
                keywords.save(written[-1])
            sentences.write(self.folder, gen, self, _write_file, written)
            _write_manifest(self.folder, manifest, written)
        except OSError as exc:
            for path in written:
                _remove(path)
            needed = len(vectors) + 2 * len(chunks)  # keyword files are smaller than the chunks
            raise _write_error(self.folder, exc, needed) from None
        self.manifest = manifest
        # The previous live generation (and its deltas) stays for a reader that has just read the
        # old manifest; everything else goes (older ones, and any a crash left that never went live).
        _remove_generations(self.folder, keep={gen, *manifest["previous_files"]})

    def save_delta(self, removed: list[int], added: list[tuple[int, Chunk]], sentence_rows: tuple) -> None:
        """Write what this update changed as a delta on the live generation, then switch the manifest.

        `removed`: chunk ids gone; `added`: new chunks (their vectors are in `self.vectors`);
        `sentence_rows`: (sentence count per added chunk, float16 rows). Base files are not touched.
        Like `save`, a failed write removes what it wrote and leaves the previous index live.
        """
        before = self.manifest  # the live manifest this index was forked from (under the writer lock)
        live = int(before["generation"])
        on_disk = [int(m.group(1)) for p in self.folder.iterdir() if (m := _GENERATION.match(p.name))]
        gen = max([live, *on_disk]) + 1
        manifest = {
            **before,
            "generation": gen,
            "base": int(before.get("base", live)),
            "deltas": [*before.get("deltas", []), gen],
            "previous_generation": live,
            "previous_files": sorted(_files_of(before)),
            "updated_at": _now(),
        }
        counts, rows = sentence_rows
        header = {"removed": removed, "sentences": [int(c) for c in counts]}
        lines = [json.dumps(header)] + [_chunk_to_json(cid, chunk) for cid, chunk in added]
        vectors = (
            self.vectors.get([cid for cid, _ in added])
            if added
            else np.zeros((0, self.manifest["dimension"]))
        )
        files = {
            f"delta-{gen}.vectors.npy": sentences.npy_bytes(vectors.astype(np.float32)),
            f"delta-{gen}.sentences.npy": sentences.npy_bytes(rows),
            # The chunks file last: it is what a reader opens first.
            f"delta-{gen}.jsonl": ("\n".join(lines) + "\n").encode(),
        }
        written: list[Path] = []
        try:
            for name, data in files.items():
                written.append(self.folder / name)
                _write_file(self.folder / name, data)
            _write_manifest(self.folder, manifest, written)
        except OSError as exc:
            for path in written:
                _remove(path)
            raise _write_error(self.folder, exc, sum(map(len, files.values()))) from None
        self.manifest = manifest
        _remove_generations(self.folder, keep=_files_of(manifest) | set(manifest["previous_files"]))


def _files_of(manifest: dict) -> set[int]:
    """The generations whose files a manifest reads: its base and its deltas."""
    gen = int(manifest["generation"])
    return {int(manifest.get("base", gen)), *(int(g) for g in manifest.get("deltas", []))}


def _live_files(folder: Path) -> set[int]:
    """The generations the live manifest reads (empty when there is no readable manifest)."""
    try:
        return _files_of(json.loads((folder / MANIFEST).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _read_delta(folder: Path, gen: int) -> tuple[dict, list[tuple[int, Chunk]], np.ndarray, np.ndarray]:
    """(header, added chunks, their vectors, their sentence rows) of one delta."""
    with open(folder / f"delta-{gen}.jsonl", encoding="utf-8") as fh:
        header = json.loads(fh.readline())
        added = [_chunk_from_json(line) for line in fh if line.strip()]
    vectors = np.load(folder / f"delta-{gen}.vectors.npy")
    rows = np.load(folder / f"delta-{gen}.sentences.npy")
    if len(vectors) != len(added):
        raise ValueError(f"delta-{gen}: {len(added)} passages but {len(vectors)} vectors")
    return header, added, vectors, rows


def _apply_deltas(index: Index, deltas: list[int]) -> None:
    """Replay the deltas on a freshly loaded base (copy-on-write layers over it)."""
    index.vectors = LayeredStore(index.vectors)
    index.keywords = LayeredKeywords(index.keywords)
    index.study_keywords = LayeredKeywords(index.study_keywords)
    for gen in deltas:
        header, added, vectors, rows = _read_delta(index.folder, gen)
        _apply_change(index, [int(i) for i in header["removed"]], added, vectors)
        sentences.store_rows(index, [c.text for _, c in added], header["sentences"], rows)


def _apply_change(
    index: Index, removed: list[int], added: list[tuple[int, Chunk]], vectors: np.ndarray
) -> list[tuple[int, Chunk]]:
    """Remove chunk ids and add chunks (with their vectors) in every layer of a layered index.

    Returns the removed (id, chunk) pairs.
    """
    gone = [(cid, index.chunks.pop(cid)) for cid in removed if cid in index.chunks]
    index.vectors.remove(removed)
    index.vectors.add([cid for cid, _ in added], vectors)
    index.chunks.update(added)
    _apply_keywords(index, gone, added)
    return gone


def follow_index(folder: Path, current: Index) -> Index:
    """The index now live in `folder`, for a reader holding `current` (loaded from `folder` before).

    When the writer only added deltas on `current`'s base, only those are read and applied
    to a copy of `current` (which is not changed), so following an update costs what changed;
    otherwise the index is loaded whole.
    """
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        known = [int(g) for g in current.manifest.get("deltas", [])]
        deltas = [int(g) for g in manifest.get("deltas", [])]
        same_base = _files_of(manifest) >= _files_of(current.manifest) and deltas[: len(known)] == known
    except (OSError, ValueError, KeyError, TypeError):
        return Index.load(folder)  # says what is wrong
    if not same_base or manifest.get("format") != FORMAT:
        return Index.load(folder)
    index = current.fork(manifest)
    removed: list[tuple[int, Chunk]] = []
    added: list[tuple[int, Chunk]] = []
    try:
        for gen in deltas[len(known) :]:
            header, chunks, vectors, rows = _read_delta(folder, gen)
            removed += _apply_change(index, [int(i) for i in header["removed"]], chunks, vectors)
            sentences.store_rows(index, [c.text for _, c in chunks], header["sentences"], rows)
            added += chunks
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexStateError(f"the index in {folder} is damaged ({type(exc).__name__}: {exc})") from None
    if index.vectors.ntotal != len(index.chunks):
        return Index.load(folder)
    new = {cid for cid, _ in added}
    index.changes = (
        [(cid, c) for cid, c in removed if cid not in new],
        [(cid, c) for cid, c in added if cid in index.chunks],
    )
    return index


def _apply_keywords(index: Index, gone: list[tuple[int, Chunk]], added: list[tuple[int, Chunk]]) -> None:
    """Unindex the `gone` passages and index the `added` ones in both layered keyword indexes."""
    index.keywords.remove([cid for cid, _ in gone], [c.embed_text for _, c in gone])
    by_doc: dict[str, list[Chunk]] = {}
    for _, chunk in sorted(gone, key=lambda item: item[0]):
        by_doc.setdefault(chunk.doc_id, []).append(chunk)
    index.study_keywords.remove(list(by_doc), [study_text(chunks) for chunks in by_doc.values()])
    index.keywords.add([cid for cid, _ in added], [c.embed_text for _, c in added])
    # An added or changed summary comes with all its passages, in id (reading) order.
    new_docs: dict[str, list[Chunk]] = {}
    for _, chunk in sorted(added, key=lambda item: item[0]):
        new_docs.setdefault(chunk.doc_id, []).append(chunk)
    index.study_keywords.add(list(new_docs), [study_text(chunks) for chunks in new_docs.values()])


def _write_manifest(folder: Path, manifest: dict, written: list[Path]) -> None:
    """Replace `manifest.json` atomically (a temp file renamed over it); temp paths go in `written`."""
    # ASCII JSON: file names that are not UTF-8 are stored escaped, never fail to encode.
    text = json.dumps(manifest, ensure_ascii=True, separators=(",", ":")).encode()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".manifest-", suffix=".tmp")
    written.append(Path(tmp))
    os.close(fd)
    _write_file(Path(tmp), text)
    os.replace(tmp, folder / MANIFEST)


def _write_file(path: Path, data: bytes) -> None:
    """Write, flush to disk and set the usual mode; a short or failed write raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    try:
        os.fchmod(fd, _FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _write_error(folder: Path, exc: OSError, needed: int) -> IndexStateError:
    """A plain message for a failed index write, with the room to free when the disk is full."""
    where = safe_text(str(folder.resolve()))
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        free = shutil.disk_usage(folder).free
        short = max(1, math.ceil((needed - free) / 1e6))
        return IndexStateError(
            f"the disk is full: free {short} MB in {where} (the new index files need about "
            f"{math.ceil(needed / 1e6)} MB), then run again; the previous index is unchanged"
        )
    return IndexStateError(
        f"could not write the index in {where} ({exc.strerror or exc}); the previous index is unchanged"
    )


def _live_generation(folder: Path) -> int | None:
    """The generation `manifest.json` names, or None when there is no readable manifest."""
    try:
        return int(json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remove_generations(folder: Path, keep: set[int | None] | set[int]) -> None:
    for path in folder.iterdir():
        match = _GENERATION.match(path.name)
        if match and int(match.group(1)) not in keep:
            _remove(path)


def clean_leftovers(folder: Path, manifest: dict | None = None) -> None:
    """Remove what a crash left: manifest temp files and generations the manifest does not name.

    Only a writer calls this (under the writer lock), so no save is under way meanwhile.
    `manifest`: the live manifest when the caller has just read it (it is 10 MB at 30k summaries).
    """
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if _TEMP.match(path.name):
            _remove(path)
    try:
        if not manifest:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        live = int(manifest["generation"])
    except FileNotFoundError:
        _remove_generations(folder, keep=set())  # a first build that crashed: nothing went live
        return
    except (OSError, ValueError, KeyError, TypeError):
        return  # a damaged manifest: leave the files for whoever inspects or rebuilds it
    # Manifests written before "previous_generation" existed kept the one below the live one.
    previous = manifest.get("previous_files", [manifest.get("previous_generation", live - 1)])
    _remove_generations(folder, keep=_files_of(manifest) | set(previous))


def recorded_docs(index_dir: Path) -> Path | None:
    """The summaries folder the index in `index_dir` was built from, if it records one."""
    try:
        recorded = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8")).get("docs")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(recorded) if isinstance(recorded, str) and recorded else None


def _switch_refusal(index_dir: Path, recorded: Path, docs: Path, indexed: dict) -> IndexStateError:
    try:
        present = {safe_text(p.name) for p in docs.iterdir() if p.suffix.lower() in SUFFIXES}
    except OSError:
        present = set()
    lost = len(set(indexed) - present)
    return IndexStateError(
        f"the index in {safe_text(str(index_dir))} follows the summaries in "
        f"{safe_text(str(recorded))}, not {safe_text(str(docs.resolve()))}; updating it from there "
        f"would remove {lost} of its {len(indexed)} summaries. Leave out --docs to use "
        f"{safe_text(str(recorded))}, choose another --index, or add {SWITCH_HINT} (or --rebuild) "
        "to make this index follow the new folder"
    )


def resolve_docs(
    index_dir: Path, docs: Path | None, switch: bool = False, default: Path | None = None
) -> Path:
    """The summaries folder a command should read for the index in `index_dir`.

    No `docs`: the folder the index records (else `default`). A `docs` other than the recorded
    one raises `IndexStateError`, naming both folders and what would be removed, unless `switch`.
    """
    recorded = recorded_docs(index_dir)
    if docs is None:
        if recorded is None and default is None:
            raise IndexStateError(f"the index in {index_dir} records no summaries folder: give --docs")
        return recorded or default  # type: ignore[return-value]
    if recorded is not None and docs.resolve() != recorded and not switch:
        try:
            indexed = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))["documents"]
        except (OSError, ValueError, KeyError):
            indexed = {}
        raise _switch_refusal(index_dir, recorded, docs, indexed)
    return docs


def study_text(chunks: list[Chunk]) -> str:
    """What whole-summary BM25 indexes for one document: its title and every passage."""
    return "\n".join([chunks[0].citation.title if chunks else "", *(c.text for c in chunks)])


def build_study_keywords(index: Index) -> KeywordIndex:
    """BM25 over whole summaries (title and every passage), one row per document id."""
    doc_ids = sorted(index.documents)
    return KeywordIndex.build(doc_ids, [study_text(index.chunks_of(d)) for d in doc_ids])


def _check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise IndexStateError(f"{folder} is a file, not an index folder: choose another --index")


def _compatible(index: Index, embedder: Embedder) -> str:
    """Why `index` cannot be updated in place with `embedder` ('' if it can)."""
    if index.model != embedder.name or index.manifest["dimension"] != embedder.dimension:
        return f"the model changed ({index.model} → {embedder.name})"
    if index.manifest.get("chunker_version") != CHUNKER_VERSION:
        return "the chunker changed"
    return ""


@contextmanager
def _writer_lock(folder: Path) -> Iterator[None]:
    """One writer at a time per index folder, across processes (`qa index` beside `serve --watch`)."""
    _check_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_index(
    folder: Path,
    loaded: LoadResult,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    switch_docs: bool = False,
    progress: Progress | None = None,
) -> tuple[Index, UpdateReport]:
    """Bring the index in `folder` up to date with `loaded`, embedding only what changed.

    A file that can no longer be parsed keeps its previously indexed passages, so a bad
    edit never loses data; a file that is gone is removed. Reading another summaries folder
    than the recorded one, or removing more than half of the summaries, needs `switch_docs`
    (or `rebuild`); an empty folder never empties the index.
    """
    with _writer_lock(folder):
        clean_leftovers(folder)
        return _update(folder, loaded, embedder, rebuild, switch_docs or rebuild, progress)


def _load_or_none(folder: Path) -> Index | None:
    try:  # kept only to carry over files that are unreadable now (never lose indexed data)
        return Index.load(folder) if (folder / MANIFEST).exists() else None
    except IndexStateError:
        return None


def _guard(folder: Path, loaded: LoadResult, before: Index | None, broken: set[str], switch: bool) -> None:
    """Refuse an update that would empty the index, or switch or mostly drop its summaries."""
    known = before.documents if before is not None else {}
    if known and not loaded.documents and not loaded.problems and not loaded.unchanged:
        # An empty or unmounted folder is far likelier than a collection deleted on purpose.
        raise IndexStateError(
            f"no summaries were found, so the index in {folder} ({len(known)} summaries) was left "
            f"as it is; check --docs (to empty the index, delete {folder})"
        )
    if switch or before is None:
        return
    recorded = before.manifest.get("docs")
    if loaded.folder is not None and recorded and Path(recorded) != loaded.folder:
        raise _switch_refusal(folder, Path(recorded), loaded.folder, known)
    gone = set(known) - {d.doc_id for d in loaded.documents} - set(loaded.unchanged) - broken
    if len(gone) > len(known) / 2:
        where = f" in {safe_text(str(loaded.folder))}" if loaded.folder else ""
        raise IndexStateError(
            f"this update would remove {len(gone)} of the {len(known)} summaries in the index in "
            f"{folder} (they are no longer{where}); the index was left as it is. If that is "
            f"meant, run again with {SWITCH_HINT} (or --rebuild)"
        )


#: A file modified this recently may be written again within the file system's timestamp
#: granularity without its mtime changing (git's "racily clean" case): its stat is not trusted.
RACY_NS = 2_000_000_000


def _stat_fields(stat: FileStat | None) -> dict:
    """The manifest fields that let the next update skip an unchanged file without reading it."""
    if stat is None or time.time_ns() - stat.mtime_ns < RACY_NS:
        return {}  # no stat: the next update hashes the file
    return {"size": stat.size, "mtime_ns": stat.mtime_ns}


def _refresh_stats(known: dict[str, dict], loaded: LoadResult) -> bool:
    """Record the current stats of files judged unchanged (touched ones); return whether any moved."""
    moved = False
    for doc_id in loaded.unchanged:
        entry = known[doc_id]
        fresh = _stat_fields(loaded.stats.get(doc_id))
        if fresh != {k: entry[k] for k in ("size", "mtime_ns") if k in entry}:
            entry.pop("size", None)
            entry.pop("mtime_ns", None)
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
) -> tuple[Index, UpdateReport]:
    """Read the summaries in `docs` and update the index in `folder`, reading only what changed.

    Files whose size and modification time match the manifest are not opened; files whose
    bytes hash the same are not parsed; only changed and added summaries are parsed and embedded.
    Skipped files are in `report.problems`. `current`, the index the caller has loaded from
    `folder`, is returned as it is when nothing changed, so no change costs no index load, and
    is updated in memory (a copy) when it is still the live one, so its base is not read again.
    A small change is written as a delta; `compact` folds the deltas into a whole new generation.
    """
    with _writer_lock(folder):
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
            if _refresh_stats(manifest["documents"], loaded):
                manifest["updated_at"] = _now()
                _write_manifest_quietly(folder, manifest)
            current.manifest = manifest  # the same generation; only stats may differ
            return current, report
        return _update(
            folder, loaded, embedder, rebuild, switch_docs or rebuild, progress, current, manifest, compact
        )


def _nothing_to_do(current: Index, manifest: dict, loaded: LoadResult, embedder: Embedder) -> bool:
    """Whether `loaded` found every summary of the live generation unchanged, and `current` is it."""
    return (
        isinstance(manifest, dict)
        and current.manifest.get("generation") == manifest.get("generation")
        and not _compatible(current, embedder)
        and not loaded.documents
        and not loaded.problems
        and set(loaded.unchanged) == set(manifest.get("documents") or {})
        and str(loaded.folder) == manifest.get("docs")
        and current.sentences is not None
    )


def _write_manifest_quietly(folder: Path, manifest: dict) -> None:
    """Write a manifest whose only news is file stats; a failure is not worth failing the update for."""
    written: list[Path] = []
    try:
        _write_manifest(folder, manifest, written)
    except OSError:
        for path in written:
            _remove(path)  # the next update hashes those files again


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


def _update(
    folder: Path,
    loaded: LoadResult,
    embedder: Embedder,
    rebuild: bool,
    switch: bool,
    progress: Progress | None,
    live: Index | None = None,
    live_manifest: dict | None = None,
    compact: bool = False,
) -> tuple[Index, UpdateReport]:
    """The update itself, under the writer lock. `live`: the caller's loaded index, used instead of
    reading the base from disk when `live_manifest` (just read from disk) says it is still live."""
    report = UpdateReport()
    index: Index | None = None
    if not rebuild and (folder / MANIFEST).exists():
        try:
            if live is not None and live_manifest and _same_generation(live.manifest, live_manifest):
                index = live.fork(live_manifest)
            else:
                loaded_index = Index.load(folder)
                index = loaded_index.fork(loaded_index.manifest)
                index.parent = None  # not an index any searcher uses
            report.rebuilt_reason = _compatible(index, embedder)
        except IndexStateError as exc:
            report.rebuilt_reason = str(exc)
        if report.rebuilt_reason:
            index = None
    elif rebuild:
        report.rebuilt_reason = "asked to rebuild"
    previous: Index | None = None
    if index is None:
        previous = _load_or_none(folder)
        index = Index.empty(folder, embedder)

    report.problems = [str(p) for p in loaded.problems]
    report.files_read = loaded.read
    if any(doc_id not in index.documents for doc_id in loaded.unchanged):
        # Recognised as unchanged against another state (a rebuild, a damaged index): parse them.
        loaded = _parse_unchanged(loaded)
        report.files_read = loaded.read
    current = {doc.doc_id: doc for doc in loaded.documents}
    broken = {safe_text(p.path.name) for p in loaded.problems}
    _guard(folder, loaded, index if index.documents else previous, broken, switch)
    known = index.documents
    stats_moved = _refresh_stats(known, loaded)
    report.unchanged += len(loaded.unchanged)
    todo: list[tuple[Document, list[Chunk]]] = []
    for doc_id, doc in current.items():
        entry = known.get(doc_id)
        if entry is not None and entry["hash"] == doc.content_hash:
            report.unchanged += 1
            continue
        chunks = _chunk_within_limit(doc, embedder, report)
        if chunks is None:
            broken.add(doc_id)  # like an unreadable file: its last good version stays
            continue
        (report.added if entry is None else report.changed).append(doc_id)
        todo.append((doc, chunks))
    for doc_id in list(known):
        if (doc_id in current or doc_id in loaded.unchanged) and doc_id not in broken:
            continue
        if doc_id in broken:
            report.kept_broken.append(doc_id)
        else:
            report.removed.append(doc_id)

    removed_ids = [cid for doc_id in report.removed + report.changed for cid in known.pop(doc_id)["chunks"]]
    removed_chunks = [(cid, index.chunks[cid]) for cid in removed_ids if cid in index.chunks]
    index.vectors.remove(removed_ids)
    for cid in removed_ids:
        index.chunks.pop(cid, None)

    new_chunks: list[tuple[int, Chunk]] = []
    next_id = index.manifest["next_id"]
    for doc, chunks in todo:
        ids = list(range(next_id, next_id + len(chunks)))
        next_id += len(chunks)
        known[doc.doc_id] = {
            "hash": doc.content_hash,
            "path": safe_text(str(doc.path)),
            "chunks": ids,
            **_stat_fields(loaded.stats.get(doc.doc_id)),
        }
        new_chunks.extend(zip(ids, chunks))
    if previous is not None:
        # A full rebuild: files unreadable now keep the passages they had, embedded anew.
        for doc_id in sorted(broken & set(previous.documents)):
            chunks = previous.chunks_of(doc_id)
            ids = list(range(next_id, next_id + len(chunks)))
            next_id += len(chunks)
            known[doc_id] = {**previous.documents[doc_id], "chunks": ids}
            new_chunks.extend(zip(ids, chunks))
            report.kept_broken.append(doc_id)
    index.manifest["next_id"] = next_id
    if not index.vectors.ntotal and not index.chunks:
        # A full build: the kind of store its size calls for (exact, or approximate past 100k).
        index.vectors = choose_store(len(new_chunks), embedder.dimension)
    _embed(index, new_chunks, embedder, progress)
    report.embedded_chunks = len(new_chunks)

    docs = str(loaded.folder) if loaded.folder is not None else index.manifest.get("docs")
    moved = docs != index.manifest.get("docs")
    if docs:
        index.manifest["docs"] = docs
    fold = compact and bool(index.manifest.get("deltas"))
    if (report.touched or moved) and not compact and _fits_delta(index, report, previous):
        # Only what changed is written; the base files stay as they are.
        _save_delta(index, embedder, removed_ids, removed_chunks, new_chunks)
    elif report.touched or moved or fold or not (folder / MANIFEST).exists():
        # A whole generation: a first build, a rebuild, or the deltas grew past their share.
        index.vectors = flatten(index.vectors)
        ordered = sorted(index.chunks)
        index.keywords = KeywordIndex.build(ordered, [index.chunks[i].embed_text for i in ordered])
        # Whole summaries too: a study about a topic uses its words in every section, and
        # ranking studies by that as well lifts them above passing mentions.
        index.study_keywords = build_study_keywords(index)
        if report.rebuilt_reason:
            index.manifest["built_at"] = _now()
        kept = _PENDING_SENTENCES.get(embedder.name, {})
        if kept:  # sentence vectors a failed save embedded
            if index.sentences is None or index.sentences.model != embedder.name:
                index.sentences = sentences.SentenceVectors(embedder.name)
            for text, vectors in kept.items():
                index.sentences.stored.setdefault(text, vectors)
        sentences.refresh(index, embedder)  # sentence vectors for highlighting, new passages only
        index.vectors = refit(index.vectors)  # exact <-> approximate when the size crossed over
        try:
            index.save()
        except IndexStateError:
            # Keep what was embedded, so the retry from this process does not embed it again.
            for cid, chunk in new_chunks:
                _PENDING[(embedder.name, chunk.embed_text)] = index.vectors.get([cid])[0]
            if index.sentences is not None:
                _PENDING_SENTENCES[embedder.name] = dict(index.sentences.stored)
            raise
        _PENDING.clear()
        _PENDING_SENTENCES.clear()
    else:
        sentences.backfill(index, embedder, _write_file)  # an index from before sentence vectors
        if stats_moved:  # touched files: record their new stats so the next update skips them
            index.manifest = {**index.manifest, "updated_at": _now()}
            _write_manifest_quietly(folder, index.manifest)
    return index, report


def _same_generation(manifest: dict, live_manifest: dict) -> bool:
    return isinstance(live_manifest, dict) and manifest.get("generation") == live_manifest.get("generation")


def _fits_delta(index: Index, report: UpdateReport, previous: Index | None) -> bool:
    """Whether this update can be written as a delta on the live generation (else: a whole one)."""
    vectors, keywords, studies = index.vectors, index.keywords, index.study_keywords
    if report.rebuilt_reason or previous is not None or not isinstance(vectors, LayeredStore):
        return False
    if not all(isinstance(k, LayeredKeywords) and k.supports_delta for k in (keywords, studies)):
        return False  # a base written before its keyword statistics were recorded
    if len(index.manifest.get("deltas", [])) >= MAX_DELTAS:
        return False
    # What a compaction would fold in, against the base's size.
    return vectors.changed <= COMPACT_SHARE * max(1, vectors.base.ntotal)


def _save_delta(
    index: Index,
    embedder: Embedder,
    removed_ids: list[int],
    removed: list[tuple[int, Chunk]],
    added: list[tuple[int, Chunk]],
) -> None:
    """Update the keyword layers and sentence vectors for what changed, then write it as a delta."""
    _apply_keywords(index, removed, added)
    kept = _PENDING_SENTENCES.get(embedder.name, {})
    if kept and index.sentences is not None and index.sentences.model == embedder.name:
        for text, vectors in kept.items():  # sentence vectors a failed save embedded
            index.sentences.stored.setdefault(text, vectors)
    rows = sentences.add_rows(index, embedder, [c.text for _, c in added])
    index.changes = (removed, added)
    try:
        index.save_delta(removed_ids, added, rows)
    except IndexStateError:
        for cid, chunk in added:  # the retry from this process embeds none of it again
            _PENDING[(embedder.name, chunk.embed_text)] = index.vectors.get([cid])[0]
        _PENDING_SENTENCES[embedder.name] = {c.text: index.sentences.stored[c.text] for _, c in added}
        raise
    _PENDING.clear()
    _PENDING_SENTENCES.clear()


def _embed(
    index: Index, new_chunks: list[tuple[int, Chunk]], embedder: Embedder, progress: Progress | None
) -> None:
    """Add the vectors of `new_chunks`, reusing any kept from a failed save."""
    total, batch = len(new_chunks), 64
    if progress and total:
        progress(0, total, "embedding passages")
    for start in range(0, total, batch):
        part = new_chunks[start : start + batch]
        keys = [(embedder.name, c.embed_text) for _, c in part]
        missing = [i for i, key in enumerate(keys) if key not in _PENDING]
        fresh = embedder.encode([part[i][1].embed_text for i in missing])
        vectors = np.zeros((len(part), embedder.dimension), dtype=np.float32)
        for row, i in enumerate(missing):
            vectors[i] = fresh[row]
        for i, key in enumerate(keys):
            if key in _PENDING:
                vectors[i] = _PENDING[key]
        index.vectors.add([i for i, _ in part], vectors)
        index.chunks.update(part)
        if progress:
            progress(min(start + batch, total), total, "embedding passages")


def open_index(folder: Path, embedder: Embedder) -> Index:
    """Load an index for querying and check it matches `embedder`."""
    index = Index.load(folder)
    index.check_model(embedder)
    return index
