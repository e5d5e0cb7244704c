"""Follow-up questions: read a short question in the light of the previous one; "more on 3"."""

from __future__ import annotations

import re

# Openers that lean on what was asked before ("and in Long COVID?", "what about rintatolimod?").
_OPENER = re.compile(
    r"^(and|or|but|also|what about|how about|and what about|same for|what of|in|for|any)\b", re.I
)
# Pronouns that point back at the last question's topic ("does it help?", "any trials of it?").
_POINTER = re.compile(r"\b(it|its|this|these|those|they|them)\b", re.I)
# "It" with nothing to point at: "is it safe to take metformin?" names its own topic after "to".
_DUMMY_IT = re.compile(
    r"\b(?:is|was|would|could|will|does|do)\s+it\s+(?:\w+\s+){0,2}?(?:to|that|if|whether)\s+\S", re.I
)
_ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "last": -1,
}
_NUMBER = r"(?P<n>\d{1,2})(?:st|nd|rd|th)?"
_ORDINAL = r"(?P<o>" + "|".join(_ORDINALS) + r")"
# "tell me more about 2", "more on 3", "open study 2", "show me the second one", "details of #1".
_MORE = re.compile(
    r"\b(?:more\s+(?:about|on)|open|show(?:\s+me)?|details?\s+(?:of|on|for)|read|expand)\s+"
    r"(?:the\s+)?(?:(?:study|paper|result|summary|number|no\.?|#)\s*)?"
    rf"(?:{_NUMBER}|{_ORDINAL})(?:\s+(?:one|study|paper|result|summary))?"
    r"(?:\s*[.!?]*\s*$|\s+please\b)",
    re.I,
)
MAX_FOLLOWUP_WORDS = 8
MAX_CONTEXT_WORDS = 30


def wants_study(message: str) -> int | None:
    """The study number in "more on 3" / "show me the second one" (-1 for "the last one"), if asked."""
    match = _MORE.search(message)
    if not match:
        return None
    return int(match.group("n")) if match.group("n") else _ORDINALS[match.group("o").lower()]


def is_followup(question: str) -> bool:
    """Whether a question is short and leans on the previous one."""
    words = question.split()
    if not 0 < len(words) <= MAX_FOLLOWUP_WORDS:
        return False
    if _OPENER.search(question):
        return True
    # "Is it safe to take metformin?": that "it" points forward, so the question stands alone.
    return bool(_POINTER.search(_DUMMY_IT.sub(" ", question)))


def with_context(question: str, previous: str) -> str:
    """The question to search: a follow-up is joined to the previous question."""
    question = question.strip()
    if previous and is_followup(question):
        # Keep the context to the last few dozen words so a chain of follow-ups cannot grow.
        context = " ".join(previous.split()[-MAX_CONTEXT_WORDS:])
        return f"{context} {question}"
    return question
