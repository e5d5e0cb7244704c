"""The part of a question the models read: all of it, or for a long message its asking sentences.

The bi-encoder reads 256 word pieces and the cross-encoder 192 for question and passage
together, so a pasted story of 1,000 characters (~250 word pieces) cannot be read whole. Cutting
it silently at the end would keep the story and drop the question, which a carer usually puts
last; so a long message keeps its sentences that ask (a "?"), from the last one back, then its
last sentences, and the answer says which part was searched.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: Word pieces of a question the search reads. The longest of the dev, multilingual and NFCorpus
#: questions has 43, so no question of those sets is cut; the reranker keeps at least 125 of
#: its 192 for the passage.
QUESTION_TOKENS = 64

# By hand: chunking.split_sentences wants a capital after the stop, which typed questions often
# lack; a question also ends with CJK stops or a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?。？！])\s+|\n+|(?<=[。？！])")
_ASKS = ("?", "？")


def clean_text(text: str) -> str:
    """`text` with lone surrogates (which JSON and a browser can carry) made U+FFFD, so it encodes."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _prefix(text: str, count_tokens: Callable[[str], int], budget: int) -> str:
    """The longest start of `text` within `budget` word pieces, ended at a space when there is one."""
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits: counts grow with length
        mid = (low + high + 1) // 2
        if count_tokens(text[:mid]) <= budget:
            low = mid
        else:
            high = mid - 1
    cut = text[:low]
    mid_word = low < len(text) and not text[low].isspace() and not cut[-1:].isspace()
    if mid_word and " " in cut.strip():  # drop the word cut in two
        cut = cut[: cut.rstrip().rfind(" ")]
    return cut.strip()


def fit_question(text: str, count_tokens: Callable[[str], int], budget: int = QUESTION_TOKENS) -> str:
    """`text` when it fits in `budget` word pieces, else the part of it the search reads."""
    if count_tokens(text) <= budget:
        return text
    sentences = _sentences(text)
    pool = [s for s in sentences if s.endswith(_ASKS) or any(a in s for a in _ASKS)] or sentences
    kept: list[str] = []
    for sentence in reversed(pool):
        if count_tokens(" ".join([sentence, *kept])) > budget:
            break
        kept.insert(0, sentence)
    if kept:
        return " ".join(kept)
    return _prefix(pool[-1] if pool else text, count_tokens, budget)
