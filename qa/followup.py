"""Follow-up questions: read a short question in the light of the previous one."""

from __future__ import annotations

import re

# Openers and pronouns that lean on what was asked before ("and in Long COVID?", "any trials of it?").
_LEANING = re.compile(
    r"^(and|or|but|also|what about|how about|and what about|same for|what of|in|for|any|"
    r"is it|does it|did it|are they|do they)\b|\b(it|its|this|these|those|they|them)\b",
    re.I,
)
_MORE = re.compile(
    r"\b(?:more about|open|show|details? (?:of|on|for)|read)\s+(?:study\s*|number\s*|no\.?\s*|#)?(\d{1,2})(?:\s*[.!?]*\s*$|\s+please\b)",
    re.I,
)
MAX_FOLLOWUP_WORDS = 8
MAX_CONTEXT_WORDS = 30


def wants_study(message: str) -> int | None:
    """The study number in "tell me more about 2" / "open #3", if the message asks for one."""
    match = _MORE.search(message)
    return int(match.group(1)) if match else None


def is_followup(question: str) -> bool:
    """Whether a question is short and leans on the previous one."""
    words = question.split()
    return 0 < len(words) <= MAX_FOLLOWUP_WORDS and bool(_LEANING.search(question))


def with_context(question: str, previous: str) -> str:
    """The question to search: a follow-up is joined to the previous question."""
    question = question.strip()
    if previous and is_followup(question):
        # Keep the context to the last few dozen words so a chain of follow-ups cannot grow.
        context = " ".join(previous.split()[-MAX_CONTEXT_WORDS:])
        return f"{context} {question}"
    return question
