"""The index on disk: FAISS vectors, BM25 keywords, chunks and a manifest; saved and loaded.

Updating it from a folder of summaries is `qa.index.update`; its files and their atomic writes
are `qa.index.files`.

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

import json
import shutil
from pathlib import Path

import numpy as np

from qa.corpus.chunking import CHUNKER_VERSION, Chunk
from qa.errors import IndexStateError

# Writes go through the module (`disk.write_file`), so a test can stand in for the disk.
from qa.index import files as disk
from qa.index import sentences
from qa.index.deltas import apply_change, apply_deltas, read_delta
from qa.index.files import (
    GENERATION_FILE,
    MANIFEST,
    check_folder,
    chunk_from_json,
    chunk_to_json,
    generations_of,
    live_generation,
    live_generations,
    remove_file,
    remove_generations,
    utc_now,
    write_error,
)
from qa.index.keywords import KeywordIndex, study_text
from qa.index.segments import LayeredKeywords, LayeredStore
from qa.index.vectorstore import ExactStore, VectorStore, load_store
from qa.models.embedding import Embedder

FORMAT = 1


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

    def fork(self, manifest: dict, vectors: VectorStore | None = None) -> Index:
        """A new Index to update, sharing this one's immutable base; this one is never changed.

        `manifest` must be a fresh copy of this index's manifest (read from disk), since the
        update edits it. Queries may keep running on this index in other threads meanwhile.
        `vectors`: the new index's store when it is not a layer over this one's (a database's).
        """
        if vectors is None:
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

    def change_from(self, old: Index) -> tuple[list[tuple[int, Chunk]], list[tuple[int, Chunk]]] | None:
        """(removed, added) chunks when this index is `old` updated in this process, else None.

        Forgets the link either way: holding it would keep the old index alive.
        """
        change = self.changes if self.parent is old else None
        self.parent, self.changes = None, None
        return change

    def sentence_vectors(self) -> sentences.SentenceVectors:
        """The sentence vectors for highlighting, made empty (for this index's model) if there are none."""
        if self.sentences is None:
            self.sentences = sentences.SentenceVectors(self.model)
        return self.sentences

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
            "built_at": utc_now(),
            "updated_at": utc_now(),
            "documents": {},
        }
        vectors: VectorStore = ExactStore(embedder.dimension)
        return cls(folder, manifest, {}, vectors, KeywordIndex.build([], []), KeywordIndex.build([], []))

    @classmethod
    def load(cls, folder: Path) -> Index:
        """Read the index in `folder`; raise `IndexStateError` saying how to fix a problem."""
        check_folder(folder)
        path = folder / MANIFEST
        rebuild = f"rebuild it with: qa index --rebuild --index {folder}"
        if not path.exists():
            raise IndexStateError(f"no index in {folder}: build one with: qa index --index {folder}")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            base = int(manifest.get("base", manifest["generation"]))  # the full files; then deltas
            vectors = load_store(folder / f"vectors-{base}.faiss", manifest.get("vector_store"))
            with open(folder / f"chunks-{base}.jsonl", encoding="utf-8") as fh:
                chunks = dict(chunk_from_json(line) for line in fh if line.strip())
            keywords = KeywordIndex.load(folder / f"keywords-{base}")
            studies_dir = folder / f"studies-{base}"
            study_keywords = KeywordIndex.load(studies_dir) if studies_dir.exists() else None
            index = cls(folder, manifest, chunks, vectors, keywords, study_keywords)
            if study_keywords is None:  # written before whole-summary BM25 existed: cheap to derive
                index.study_keywords = build_study_keywords(index)
            index.sentences = sentences.SentenceVectors.load(folder, base, index.model, chunks)
            if manifest.get("deltas"):
                apply_deltas(index, [int(g) for g in manifest["deltas"]])
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
        check_folder(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        live = live_generation(self.folder)
        # Never reuse a generation that may be on disk (a rebuild starts from 0).
        on_disk = [int(m.group(1)) for p in self.folder.iterdir() if (m := GENERATION_FILE.match(p.name))]
        gen = max([self.manifest.get("generation", 0), live or 0, *on_disk]) + 1
        manifest = {
            **self.manifest,
            "generation": gen,
            "base": gen,
            "deltas": [],
            "previous_generation": live,
            "previous_files": sorted(live_generations(self.folder)),
            "updated_at": utc_now(),
            "vector_store": self.vectors.describe(),
        }
        vectors = self.vectors.to_bytes()  # written by Python: OSError, errno
        chunks = "".join(chunk_to_json(cid, chunk) + "\n" for cid, chunk in self.chunks.items())
        written: list[Path] = []
        try:
            for name, data in ((f"vectors-{gen}.faiss", vectors), (f"chunks-{gen}.jsonl", chunks.encode())):
                written.append(self.folder / name)
                disk.write_file(self.folder / name, data)
            for name, keywords in (("keywords", self.keywords), ("studies", self.study_keywords)):
                written.append(self.folder / f"{name}-{gen}")
                shutil.rmtree(written[-1], ignore_errors=True)
                keywords.save(written[-1])
            sentences.write(self.folder, gen, self.sentence_rows, disk.write_file, written)
            disk.write_manifest(self.folder, manifest, written)
        except OSError as exc:
            for path in written:
                remove_file(path)
            needed = len(vectors) + 2 * len(chunks)  # keyword files are smaller than the chunks
            raise write_error(self.folder, exc, needed) from None
        self.manifest = manifest
        # The previous live generation (and its deltas) stays for a reader that has just read the
        # old manifest; everything else goes (older ones, and any a crash left that never went live).
        remove_generations(self.folder, keep={gen, *manifest["previous_files"]})

    def save_delta(self, removed: list[int], added: list[tuple[int, Chunk]], sentence_rows: tuple) -> None:
        """Write what this update changed as a delta on the live generation, then switch the manifest.

        `removed`: chunk ids gone; `added`: new chunks (their vectors are in `self.vectors`);
        `sentence_rows`: (sentence count per added chunk, float16 rows). Base files are not touched.
        Like `save`, a failed write removes what it wrote and leaves the previous index live.
        """
        before = self.manifest  # the live manifest this index was forked from (under the writer lock)
        live = int(before["generation"])
        on_disk = [int(m.group(1)) for p in self.folder.iterdir() if (m := GENERATION_FILE.match(p.name))]
        gen = max([live, *on_disk]) + 1
        manifest = {
            **before,
            "generation": gen,
            "base": int(before.get("base", live)),
            "deltas": [*before.get("deltas", []), gen],
            "previous_generation": live,
            "previous_files": sorted(generations_of(before)),
            "updated_at": utc_now(),
        }
        counts, rows = sentence_rows
        header = {"removed": removed, "sentences": [int(c) for c in counts]}
        lines = [json.dumps(header)] + [chunk_to_json(cid, chunk) for cid, chunk in added]
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
                disk.write_file(self.folder / name, data)
            disk.write_manifest(self.folder, manifest, written)
        except OSError as exc:
            for path in written:
                remove_file(path)
            raise write_error(self.folder, exc, sum(map(len, files.values()))) from None
        self.manifest = manifest
        remove_generations(self.folder, keep=generations_of(manifest) | set(manifest["previous_files"]))


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
        same_base = (
            generations_of(manifest) >= generations_of(current.manifest) and deltas[: len(known)] == known
        )
    except (OSError, ValueError, KeyError, TypeError):
        return Index.load(folder)  # says what is wrong
    if not same_base or manifest.get("format") != FORMAT:
        return Index.load(folder)
    index = current.fork(manifest)
    removed: list[tuple[int, Chunk]] = []
    added: list[tuple[int, Chunk]] = []
    try:
        for gen in deltas[len(known) :]:
            header, chunks, vectors, rows = read_delta(folder, gen)
            removed += apply_change(index, [int(i) for i in header["removed"]], chunks, vectors)
            index.sentence_vectors().store_rows([c.text for _, c in chunks], header["sentences"], rows)
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


def build_study_keywords(index: Index) -> KeywordIndex:
    """BM25 over whole summaries (title and every passage), one row per document id."""
    doc_ids = sorted(index.documents)
    return KeywordIndex.build(doc_ids, [study_text(index.chunks_of(d)) for d in doc_ids])


def open_index(folder: Path, embedder: Embedder) -> Index:
    """Load an index for querying and check it matches `embedder`."""
    index = Index.load(folder)
    index.check_model(embedder)
    return index
