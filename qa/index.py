"""The index on disk: FAISS vectors, BM25 keywords, chunks and a manifest; built and updated.

Files of one generation (`vectors-N.faiss`, `chunks-N.jsonl`, `keywords-N/`, `studies-N/`) are written
first; `manifest.json`, which names the generation, is replaced last with an atomic rename.
A crash at any point leaves the previous index readable.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np

from qa.chunking import CHUNKER_VERSION, Chunk, chunk_document
from qa.documents import Citation, Document, LoadResult
from qa.embedding import Embedder
from qa.errors import IndexStateError
from qa.keywords import KeywordIndex

FORMAT = 1
MANIFEST = "manifest.json"
_GENERATION = re.compile(r"^(?:vectors|chunks|keywords|studies)-(\d+)")

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
    embedded_chunks: int = 0
    rebuilt_reason: str = ""

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
        return text


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _chunk_to_json(cid: int, chunk: Chunk) -> str:
    return json.dumps({"id": cid, **asdict(chunk)}, ensure_ascii=False)


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
        vectors: faiss.Index,
        keywords: KeywordIndex,
        study_keywords: KeywordIndex,
    ) -> None:
        self.folder = folder
        self.manifest = manifest
        self.chunks = chunks
        self.vectors = vectors
        self.keywords = keywords  # BM25 over passages
        self.study_keywords = study_keywords  # BM25 over whole summaries, ids are doc ids

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
        vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(embedder.dimension))
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
            gen = manifest["generation"]
            vectors = faiss.read_index(str(folder / f"vectors-{gen}.faiss"))
            with open(folder / f"chunks-{gen}.jsonl", encoding="utf-8") as fh:
                chunks = dict(_chunk_from_json(line) for line in fh if line.strip())
            keywords = KeywordIndex.load(folder / f"keywords-{gen}")
            studies_dir = folder / f"studies-{gen}"
            study_keywords = KeywordIndex.load(studies_dir) if studies_dir.exists() else None
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexStateError(
                f"the index in {folder} is damaged ({type(exc).__name__}: {exc}); {rebuild}"
            ) from None
        if manifest.get("format") != FORMAT or vectors.ntotal != len(chunks):
            raise IndexStateError(f"the index in {folder} is inconsistent or too old; {rebuild}")
        index = cls(folder, manifest, chunks, vectors, keywords, study_keywords)
        if study_keywords is None:  # written before whole-summary BM25 existed: cheap to derive
            index.study_keywords = build_study_keywords(index)
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
        """Write a new generation of files, then switch the manifest to it atomically."""
        _check_folder(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        # Never reuse a generation that may be live on disk (a rebuild starts from 0).
        on_disk = [int(m.group(1)) for p in self.folder.iterdir() if (m := _GENERATION.match(p.name))]
        gen = max([self.manifest.get("generation", 0), *on_disk]) + 1
        faiss.write_index(self.vectors, str(self.folder / f"vectors-{gen}.faiss"))
        with open(self.folder / f"chunks-{gen}.jsonl", "w", encoding="utf-8") as fh:
            for cid, chunk in self.chunks.items():
                fh.write(_chunk_to_json(cid, chunk) + "\n")
        for name, keywords in (("keywords", self.keywords), ("studies", self.study_keywords)):
            keyword_dir = self.folder / f"{name}-{gen}"
            shutil.rmtree(keyword_dir, ignore_errors=True)
            keywords.save(keyword_dir)
        manifest = {**self.manifest, "generation": gen, "updated_at": _now()}
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".manifest-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.folder / MANIFEST)
        self.manifest = manifest
        # Keep the previous generation too: a reader that has just read the old manifest
        # still finds its files. Older ones go.
        for stale in self.folder.iterdir():
            match = _GENERATION.match(stale.name)
            if match and int(match.group(1)) < gen - 1:
                shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink()


def build_study_keywords(index: Index) -> KeywordIndex:
    """BM25 over whole summaries (title and every passage), one row per document id."""
    doc_ids = sorted(index.documents)
    texts = []
    for doc_id in doc_ids:
        chunks = index.chunks_of(doc_id)
        texts.append("\n".join([chunks[0].citation.title if chunks else "", *(c.text for c in chunks)]))
    return KeywordIndex.build(doc_ids, texts)


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
    progress: Progress | None = None,
) -> tuple[Index, UpdateReport]:
    """Bring the index in `folder` up to date with `loaded`, embedding only what changed.

    A file that can no longer be parsed keeps its previously indexed passages, so a bad
    edit never loses data; a file that is gone is removed.
    """
    with _writer_lock(folder):
        return _update(folder, loaded, embedder, rebuild, progress)


def _update(
    folder: Path, loaded: LoadResult, embedder: Embedder, rebuild: bool, progress: Progress | None
) -> tuple[Index, UpdateReport]:
    report = UpdateReport()
    index: Index | None = None
    if not rebuild and (folder / MANIFEST).exists():
        try:
            index = Index.load(folder)
            report.rebuilt_reason = _compatible(index, embedder)
        except IndexStateError as exc:
            report.rebuilt_reason = str(exc)
        if report.rebuilt_reason:
            index = None
    elif rebuild:
        report.rebuilt_reason = "asked to rebuild"
    previous: Index | None = None
    if index is None:
        try:  # kept only to carry over files that are unreadable now (never lose indexed data)
            previous = Index.load(folder) if (folder / MANIFEST).exists() else None
        except IndexStateError:
            previous = None
        index = Index.empty(folder, embedder)

    known = index.documents
    if known and not loaded.documents and not loaded.problems:
        # An empty or unmounted folder is far likelier than a collection deleted on purpose.
        raise IndexStateError(
            f"no summaries were found, so the index in {folder} ({len(known)} summaries) was left "
            f"as it is; check --docs (to empty the index, delete {folder})"
        )
    current = {doc.doc_id: doc for doc in loaded.documents}
    broken = {p.path.name for p in loaded.problems}
    for doc_id in list(known):
        if doc_id in current:
            continue
        if doc_id in broken:
            report.kept_broken.append(doc_id)
        else:
            report.removed.append(doc_id)
    todo: list[Document] = []
    for doc_id, doc in current.items():
        entry = known.get(doc_id)
        if entry is None:
            report.added.append(doc_id)
            todo.append(doc)
        elif entry["hash"] != doc.content_hash:
            report.changed.append(doc_id)
            todo.append(doc)
        else:
            report.unchanged += 1

    for doc_id in report.removed + report.changed:
        ids = known.pop(doc_id)["chunks"]
        index.vectors.remove_ids(np.asarray(ids, dtype=np.int64))
        for cid in ids:
            index.chunks.pop(cid, None)

    new_chunks: list[tuple[int, Chunk]] = []
    next_id = index.manifest["next_id"]
    for doc in todo:
        chunks = chunk_document(doc, embedder.max_tokens, embedder.count_tokens)
        ids = list(range(next_id, next_id + len(chunks)))
        next_id += len(chunks)
        known[doc.doc_id] = {"hash": doc.content_hash, "path": str(doc.path), "chunks": ids}
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

    texts = [c.embed_text for _, c in new_chunks]
    batch = 64
    if progress and texts:
        progress(0, len(texts), "embedding passages")
    for start in range(0, len(texts), batch):
        part = new_chunks[start : start + batch]
        vectors = embedder.encode([c.embed_text for _, c in part])
        index.vectors.add_with_ids(vectors, np.asarray([i for i, _ in part], dtype=np.int64))
        index.chunks.update(part)
        if progress:
            progress(min(start + batch, len(texts)), len(texts), "embedding passages")
    report.embedded_chunks = len(texts)

    if report.touched or not (folder / MANIFEST).exists():
        ordered = sorted(index.chunks)
        index.keywords = KeywordIndex.build(ordered, [index.chunks[i].embed_text for i in ordered])
        # Whole summaries too: a study about a topic uses its words in every section, and
        # ranking studies by that as well lifts them above passing mentions.
        index.study_keywords = build_study_keywords(index)
        if report.rebuilt_reason:
            index.manifest["built_at"] = _now()
        index.save()
    return index, report


def open_index(folder: Path, embedder: Embedder) -> Index:
    """Load an index for querying and check it matches `embedder`."""
    index = Index.load(folder)
    index.check_model(embedder)
    return index
