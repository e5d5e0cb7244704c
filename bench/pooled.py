"""Would one forward pass do for highlighting? Sentence vectors pooled from a passage's tokens
against sentences embedded alone (issue "One pass").

Usage: python bench/pooled.py --index DIR [--answers FILE]

The build embeds each passage, then each of its sentences again for the marks (about a third of
a build of the 317 summaries, half of one of NFCorpus). MiniLM's passage vector is the mean of
its token vectors, so one pass could also give each sentence the mean of its own tokens' vectors.
For the first passage of each of the top 5 studies per question of the judged set
(tests/data/questions-answers.jsonl; reranking off), this prints how often the sentence closest to
the question is the same both ways, and, over passages holding a sentence judged to answer, how
often each way's closest sentence is one of them. Passages whose text the model's input does
not hold verbatim, or of one sentence, are skipped and counted.
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

sys.path.insert(0, str(ROOT / "bench"))
from digest import answers, normalise  # noqa: E402  (the digest bench's judging of a sentence)

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
    parser.add_argument("--answers", type=Path, default=ROOT / "tests" / "data" / "questions-answers.jsonl")
    args = parser.parse_args()
    embedder = get_embedder("")
    searcher = open_searcher(Index.load(args.index), embedder, SearchSettings(rerank="none"))
    rows = [json.loads(line) for line in args.answers.read_text().splitlines() if line.strip()]
    same = compared = skipped = judged = right_alone = right_pooled = 0
    for row in rows:
        question = row["question"]
        query = embedder.encode_query(question)
        good = [normalise(s) for a in row.get("answers", []) for s in a["sentences"]]
        for study in searcher.search(question, k=5).studies:
            chunk = study.passages[0].chunk
            sentences = sentences_of(chunk.text)
            found = pooled(embedder.model, chunk) if len(sentences) > 1 else None
            if found is None:
                skipped += 1
                continue
            alone = embedder.encode(sentences)
            compared += 1
            best_alone, best_pooled = int(np.argmax(alone @ query)), int(np.argmax(found @ query))
            same += int(best_alone == best_pooled)
            if any(answers(s, good) for s in sentences):
                judged += 1
                right_alone += int(answers(sentences[best_alone], good))
                right_pooled += int(answers(sentences[best_pooled], good))
    print("# Pooled sentence vectors against sentences embedded alone\n")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    print(f"Closest sentence the same: {same} of {compared} passages ({same / max(compared, 1):.3f}); ")
    print(f"{skipped} skipped (one sentence, or text not verbatim in the model's input).\n")
    print(f"Of {judged} passages holding a judged answering sentence, the closest sentence answers:")
    print(f"- embedded alone: {right_alone} ({right_alone / max(judged, 1):.3f})")
    print(f"- pooled in one pass: {right_pooled} ({right_pooled / max(judged, 1):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
