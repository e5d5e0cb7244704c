"""Would one forward pass do for highlighting? Sentence vectors pooled from a passage's tokens
against sentences embedded alone (issue "One pass").

Usage: python bench/pooled.py --index DIR [--questions FILE]

The build embeds each passage, then each of its sentences again for the marks (about a third of
a build of the 317 summaries, half of one of NFCorpus). MiniLM's passage vector is the mean of
its token vectors, so one pass could also give each sentence the mean of its own tokens' vectors.
For the first passage of each of the top 5 studies per dev question (reranking off), this prints
how often the sentence closest to the question is the same both ways. Passages whose text the
model's input does not hold verbatim, or of one sentence, are skipped and counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.index.sentences import sentences_of  # noqa: E402
from qa.index.store import Index  # noqa: E402
from qa.models.embedding import get_embedder  # noqa: E402
from qa.search.types import SearchSettings  # noqa: E402
from qa.serve.service import open_searcher  # noqa: E402


def pooled(model, chunk) -> np.ndarray | None:
    """Unit vectors of the passage's sentences, each the mean of its tokens' vectors in one pass."""
    text, full = chunk.text, chunk.embed_text
    base = full.rfind(text)
    if base < 0:
        return None
    tokens = model.encode([full], output_value="token_embeddings", convert_to_numpy=False)[0].numpy()
    spans = model.tokenizer(
        full, return_offsets_mapping=True, truncation=True, max_length=model.max_seq_length
    )
    offsets = spans["offset_mapping"]
    vectors, at = [], 0
    for sentence in sentences_of(text):
        start = text.find(sentence, at)
        start = start if start >= 0 else at
        end = at = start + len(sentence)
        rows = [i for i, (a, b) in enumerate(offsets) if b > a and a < base + end and b > base + start]
        v = tokens[rows].mean(0) if rows else np.zeros(tokens.shape[1], dtype=np.float32)
        vectors.append(v / (np.linalg.norm(v) or 1.0))
    return np.asarray(vectors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="an index of ../shared/corpus/summaries")
    parser.add_argument(
        "--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "questions-dev.jsonl"
    )
    args = parser.parse_args()
    embedder = get_embedder("")
    searcher = open_searcher(Index.load(args.index), embedder, SearchSettings(rerank="none"))
    questions = [
        json.loads(line)["question"] for line in args.questions.read_text().splitlines() if line.strip()
    ]
    same = compared = skipped = 0
    for question in questions:
        query = embedder.encode_query(question)
        for study in searcher.search(question, k=5).studies:
            chunk = study.passages[0].chunk
            sentences = sentences_of(chunk.text)
            found = pooled(embedder.model, chunk) if len(sentences) > 1 else None
            if found is None:
                skipped += 1
                continue
            alone = embedder.encode(sentences)
            compared += 1
            same += int(np.argmax(alone @ query) == np.argmax(found @ query))
    print("# Pooled sentence vectors against sentences embedded alone\n")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    print(f"Closest sentence the same: {same} of {compared} passages ({same / max(compared, 1):.3f}); ")
    print(f"{skipped} skipped (one sentence, or text not verbatim in the model's input).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
