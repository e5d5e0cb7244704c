"""What readers and API clients send, checked: questions, filters, dates and k, each problem a plain ValueError."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from qa.config import CATEGORY_TAGS, DEFAULT_K
from qa.search.question import clean_text
from qa.search.types import Filters, parse_filters

MAX_K = 20  # the API's bound on studies per answer (the app's slider stops at 10)


MAX_QUESTION = 1000  # characters; a question longer than this is not a question


ANY = "Any"


_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def check_date(label: str, value: Any) -> str:
    """A date filter as given ("2024", "2024-05", "2024-05-31") or ""; ValueError says what is wrong."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{label} date must be text such as 2024 or 2024-05-31 (got {type(value).__name__})")
    value = value.strip()
    if not value or value == ANY:
        return ""
    match = _DATE.match(value)
    if not match:
        raise ValueError(f"{label} date must look like 2024, 2024-05 or 2024-05-31 (got {value!r})")
    year, month, day = (int(g) if g else 1 for g in match.groups())
    try:
        dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"{label} date {value!r} is not a real date") from None
    return value


def check_filters(tags: Any, date_from: Any, date_to: Any) -> Filters:
    """Filters from user or API input, every problem a ValueError with a plain message."""
    if tags is None:
        tags = []
    if isinstance(tags, str):
        tags = [tags] if tags else []
    if not isinstance(tags, list | tuple) or not all(isinstance(t, str) for t in tags):
        raise ValueError(f"tags must be a list of tag names from {', '.join(CATEGORY_TAGS)}")
    start, end = check_date("From", date_from), check_date("To", date_to)
    if start and end and start[: len(end)] > end:
        raise ValueError(f"the From date ({start}) is after the To date ({end})")
    return parse_filters(list(tags), start, end)


def check_k(k: Any) -> int:
    """The number of studies: a whole number from 1 to MAX_K; None means the default."""
    if k is None:
        return DEFAULT_K
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, str) and k.strip().isdigit():
        k = int(k.strip())
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"k must be a whole number from 1 to {MAX_K} (got {k!r})")
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be from 1 to {MAX_K} (got {k})")
    return k


def check_question(question: Any, name: str = "question") -> str:
    """A question as text; anything else is a ValueError."""
    if question is None and name == "previous":
        return ""
    if not isinstance(question, str):
        raise ValueError(f"{name} must be text (got {type(question).__name__})")
    if len(question) > MAX_QUESTION:
        raise ValueError(f"{name} is too long: at most {MAX_QUESTION} characters (got {len(question)})")
    return clean_text(question).strip()


def as_sentence(text: str) -> str:
    """`text` with a capital first letter and the rest as it was (str.capitalize lowers the rest)."""
    return text[:1].upper() + text[1:]


def typed(message: Any) -> str:
    """What a reader typed (or put in `?q=`), cleaned and cut to MAX_QUESTION characters."""
    return clean_text(message if isinstance(message, str) else "").strip()[:MAX_QUESTION].strip()
