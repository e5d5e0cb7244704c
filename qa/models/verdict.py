"""A fitted "is this question answered?" model: a logistic regression over what a search measured.

It belongs to one reranker (its features include that reranker's scores), so it is stored beside
the reranker's name in `qa/models/data/verdict-<reranker>.json`, written by `bench/verdict.py
--write` (the one command that refits it) and read when the reranker loads.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Verdict:
    """Standardised features → weights → the probability that some summary answers."""

    #: The reranker whose scores the features hold (its full name).
    reranker: str
    #: Feature names, in the order of `mean`, `scale` and `weights` (qa/search/verdict.py).
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    #: Below this probability the answer says "not covered" (chosen for few false flags).
    threshold: float
    #: How it was fitted: date, data, cross-validated figures (for the record, not used).
    fitted: dict = field(default_factory=dict)

    def probability(self, values: dict[str, float]) -> float:
        """The probability that a summary answers, from the named feature values."""
        z = self.bias
        for name, mean, scale, weight in zip(self.features, self.mean, self.scale, self.weights):
            z += weight * (float(values[name]) - mean) / (scale or 1.0)
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def describe(self) -> dict:
        """What an answer records about the verdict that judged it."""
        return {"reranker": self.reranker, "threshold": self.threshold, "fitted": self.fitted.get("date", "")}

    def save(self, path: Path) -> None:
        """Write the verdict as readable JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Verdict:
        """Read a verdict written by `save`."""
        data = json.loads(path.read_text(encoding="utf-8"))
        for key in ("features", "mean", "scale", "weights"):
            data[key] = tuple(data[key])
        return cls(**data)


def verdict_path(slug: str) -> Path:
    """Where the verdict of the reranker registered as `slug` is stored."""
    return DATA / f"verdict-{slug}.json"


def load_verdict(slug: str, reranker: str) -> Verdict | None:
    """The stored verdict for a reranker, or None when none was fitted for exactly that model."""
    path = verdict_path(slug)
    if not path.exists():
        return None
    verdict = Verdict.load(path)
    return verdict if verdict.reranker == reranker else None
