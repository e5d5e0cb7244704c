"""BM25 keyword index over the same chunks as the vector index (bm25s, English stemming)."""

from __future__ import annotations

import bisect
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import bm25s
import numpy as np
import Stemmer

if TYPE_CHECKING:
    from qa.corpus.chunking import Chunk

_STEMMER = Stemmer.Stemmer("english")
_STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)
_WORD = re.compile(r"\w+")
# Drug names and markers are written "IL-6", "ME/CFS", "gH/gL", "CoQ10": bm25s's own regex
# splits them and drops the one-character halves, so "IL-6" would only match "il". We keep
# the parts and add the joined compound ("il6", "mecfs") so either spelling matches.
_COMPOUND = re.compile(r"\w+(?:[-/]\w+)+")


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed tokens without stopwords; compounds also kept joined."""
    text = text.lower()
    words = [w for w in _WORD.findall(text) if (len(w) > 1 or w.isdigit()) and w not in _STOPWORDS]
    words += [re.sub(r"[-/]", "", c) for c in _COMPOUND.findall(text)]
    return list(_stem(tuple(words)))


@lru_cache(maxsize=4096)
def _stem(words: tuple[str, ...]) -> list[str]:
    return _STEMMER.stemWords(list(words))


class KeywordSearch(Protocol):
    """What a keyword index answers, whether built whole (`KeywordIndex`) or layered with
    deltas (`qa.index.segments.LayeredKeywords`); tests/test_keywords.py runs one contract on both."""

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple]:
        """Top `k` (id, BM25 score) for a query; empty if no query word is indexed.

        `allowed`: for integer ids, a boolean array by id; rows whose id is False (or past its
        end) are left out before the top `k` are taken (filters, without scoring twice).
        """
        ...

    def doc_freq(self, token: str) -> int:
        """Rows that contain the (already tokenised) term."""
        ...

    def knows_stem_of(self, word: str, prefix: int = 6) -> bool:
        """Whether an indexed term shares `word`'s first letters."""
        ...


class KeywordIndex:
    """A bm25s index whose rows are identified by the vector index's chunk ids."""

    def __init__(self, model: bm25s.BM25, ids: list, avgdl: float | None = None) -> None:
        self.model = model
        self.ids = ids
        #: Mean tokens per row, which bm25s uses but does not keep: rows added later
        #: (qa/index/segments.py) are scored with it. None for an index saved before it was recorded.
        self.avgdl = avgdl
        self.vocab: dict[str, int] = model.vocab_dict or {}
        # Document frequency per term: how many chunks contain it, for "is this word known?"
        self._df = np.diff(model.scores["indptr"]) if ids else np.zeros(0, dtype=np.int64)

    @classmethod
    def build(cls, ids: list, texts: list[str]) -> KeywordIndex:
        """Index `texts`, one row per id (chunk ids, or doc ids for whole summaries)."""
        return cls.from_tokens(ids, [tokenize(t) for t in texts])

    @classmethod
    def from_tokens(cls, ids: list, tokens: list[list[str]]) -> KeywordIndex:
        """Index rows already tokenised by `tokenize` (a store that keeps the tokens)."""
        model = bm25s.BM25()
        tokens = [t or [""] for t in tokens] or [[""]]
        model.index(tokens, show_progress=False)
        return cls(model, list(ids), sum(map(len, tokens)) / len(tokens))

    @property
    def num_rows(self) -> int:
        """Rows bm25s counts in its statistics (N of the idf)."""
        return int(self.model.scores["num_docs"])

    def doc_freq(self, token: str) -> int:
        """Number of chunks that contain the (already tokenised) term."""
        index = self.vocab.get(token)
        return int(self._df[index]) if index is not None and index < len(self._df) else 0

    def knows_stem_of(self, word: str, prefix: int = 6) -> bool:
        """Whether an indexed term shares `word`'s first letters ("inflamed" ~ "inflammation").

        Long words must share all but their last three letters, so "hydroxychloroquine" is
        not known from "hydroxyl".
        """
        if not hasattr(self, "_sorted"):
            self._sorted = sorted(self.vocab)
        return has_prefix(self._sorted, word, prefix)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple]:
        """Top `k` (id, BM25 score) for a query; empty if no query word is indexed.

        `allowed` (a boolean array by integer id) leaves rows out before the top `k` are taken.
        """
        tokens = [t for t in tokenize(query) if t in self.vocab]
        if not tokens or not self.ids:
            return []
        k = min(k, len(self.ids))
        mask = self.mask(allowed) if allowed is not None else None
        rows, scores = self.model.retrieve([tokens], k=k, show_progress=False, n_threads=1, weight_mask=mask)
        return [(self.ids[r], float(s)) for r, s in zip(rows[0], scores[0]) if s > 0]

    def mask(self, allowed: np.ndarray) -> np.ndarray:
        """bm25s's weight mask (one float per row) from a boolean array by integer id."""
        if not hasattr(self, "_id_array"):
            self._id_array = np.asarray(self.ids, dtype=np.int64)
        inside = self._id_array < len(allowed)
        out = np.zeros(len(self._id_array), dtype=np.float32)
        out[inside] = allowed[self._id_array[inside]]
        return out

    def save(self, folder: Path) -> None:
        """Write the index and its id list into `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(str(folder), show_progress=False)
        (folder / "ids.json").write_text(json.dumps(self.ids))
        if self.avgdl is not None:
            (folder / "stats.json").write_text(json.dumps({"avgdl": self.avgdl}))

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex:
        """Read an index written by `save`."""
        model = bm25s.BM25.load(str(folder), show_progress=False)
        ids = json.loads((folder / "ids.json").read_text())
        stats = folder / "stats.json"
        avgdl = json.loads(stats.read_text()).get("avgdl") if stats.exists() else None
        return cls(model, ids, avgdl)


def has_prefix(terms: list[str], word: str, prefix: int = 6) -> bool:
    """Whether a term of the sorted `terms` starts with `word`'s first letters (all but its last three)."""
    head = word.lower()[: max(prefix, len(word) - 3)]
    if len(head) < prefix:
        return False
    at = bisect.bisect_left(terms, head)
    return at < len(terms) and terms[at].startswith(head)


def study_text(chunks: list[Chunk]) -> str:
    """What whole-summary BM25 indexes for one document: its title and every passage."""
    return "\n".join([chunks[0].citation.title if chunks else "", *(c.text for c in chunks)])
