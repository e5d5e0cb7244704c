"""Words people type: acronyms learned from the corpus, and misspellings corrected against it.

Nothing here is a hand-written list of topics. Acronyms come from the summaries themselves
("low-dose naltrexone (LDN)" teaches LDN ↔ low-dose naltrexone); spelling is corrected against
the words the summaries use, with symspellpy's English frequency list to tell everyday words
from typos.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

_WORD = re.compile(r"[^\W\d_][\w'-]*")
# "long form (SF)": the short form is 2-10 characters, starts with a letter or digit, has a
# capital letter, and is not a plain number or a citation year.
_PAREN = re.compile(r"\(([A-Za-z0-9][\w/&-]{1,9})s?\)")
_MAX_WORDS_BEFORE = 10


@dataclass(frozen=True)
class Understood:
    """A question as read: what is searched, and which words were expanded or corrected."""

    question: str
    searched: str
    corrections: tuple[tuple[str, str], ...] = ()
    expansions: tuple[tuple[str, str], ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the searched text differs from what was typed."""
        return self.searched != self.question


def _long_form(short: str, words: list[str]) -> str:
    """The Schwartz & Hearst (2003) match of `short` in the words before its parenthesis.

    Written out because it is a dozen lines and no small, kept library does only this (scispacy
    has it, with a spaCy pipeline around it). Each character of the short form, from the end,
    must be found in the candidate text in order, the first one at the start of a word.
    """
    text = " ".join(words)
    s, t = len(short) - 1, len(text) - 1
    while s >= 0:
        ch = short[s].lower()
        if not ch.isalnum():
            s -= 1
            continue
        while t >= 0 and (text[t].lower() != ch or (s == 0 and t > 0 and text[t - 1].isalnum())):
            t -= 1
        if t < 0:
            return ""
        s, t = s - 1, t - 1
    start = text.rfind(" ", 0, t + 1) + 1
    long = text[start:].strip(" ,;:-")
    # The long form must be longer than the short one and hold at least as many words as
    # the short form's letters suggest, give or take (S&H keep min(|SF|+5, 2|SF|) words).
    n_words = len(long.split())
    if len(long) <= len(short) or n_words > min(len(short) + 5, 2 * len(short)):
        return ""
    return long


def find_acronyms(texts: Iterable[str]) -> dict[str, str]:
    """Short form → its most frequent long form, from "long form (SF)" in the texts."""
    return _most_common(count_acronyms(texts))


def _most_common(seen: dict[str, Counter]) -> dict[str, str]:
    """Each acronym's most written long form; a tie goes to the alphabetically first, so the
    vocabulary is the same whatever order the texts came in (learned at once, or by updates:
    "GPCR" once meant "g protein-coupled receptor" in one and "g-protein-coupled receptors" in
    the other)."""
    return {
        short: min(+forms, key=lambda form: (-forms[form], form)) for short, forms in seen.items() if +forms
    }


def count_acronyms(texts: Iterable[str]) -> dict[str, Counter]:
    """Short form → how often each long form was written before it in the texts."""
    seen: dict[str, Counter] = {}
    for text in texts:
        for match in _PAREN.finditer(text):
            short = match.group(1)
            if sum(c.isupper() for c in short) < 2 or short.isdigit():
                continue  # "(n=20)", "(2024)", "(a)": not acronyms
            before = text[: match.start()].split()[-_MAX_WORDS_BEFORE:]
            long = _long_form(short, before)
            if long:
                seen.setdefault(short, Counter())[long.lower()] += 1
    return seen


@lru_cache(maxsize=1)
def english_counts() -> dict[str, int]:
    """symspellpy's English word frequencies (82,765 words), to tell everyday words from typos."""
    from importlib import resources

    path = resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
    counts = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, _, count = line.partition(" ")
        counts[word] = int(count)
    return counts


@dataclass(frozen=True)
class _Suggestion:
    distance: int
    count: int
    term: str


def _spell_dictionary(words: Counter):  # noqa: ANN202 - symspellpy has no type hints
    """A symspellpy dictionary of the corpus words worth correcting towards."""
    from symspellpy import SymSpell

    spell = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
    for word, count in words.items():
        if len(word) >= 3 and word.isalpha():
            spell.create_dictionary_entry(word, count)
    return spell


class Vocabulary:
    """The words and acronyms of an indexed collection; reads a question against them."""

    def __init__(
        self,
        words: Counter,
        acronyms: dict[str, str],
        seen: dict[str, Counter] | None = None,
        spells: list | None = None,
    ) -> None:
        self.words = words
        self.acronyms = acronyms
        self._seen = seen  # acronym counts, so an update can recount them (`updated`)
        self._lower_acronyms = {a.lower(): a for a in acronyms}
        # Spelling dictionaries: the first over the words learned at once, then one small one of
        # words added by updates since (building the first takes seconds at 200k passages).
        self._spells = spells if spells is not None else [_spell_dictionary(words)]

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Vocabulary:
        """Learn words and acronyms from the texts of a collection."""
        texts = list(texts)
        words = Counter(w.lower() for t in texts for w in _WORD.findall(t))
        seen = count_acronyms(texts)
        return cls(words, _most_common(seen), seen)

    def updated(self, removed: Iterable[str], added: Iterable[str]) -> Vocabulary:
        """A new vocabulary for the collection with `removed` texts gone and `added` ones in.

        Costs what changed (this one is not modified, so searches using it go on meanwhile).
        Words no text uses any more are forgotten; new words go to a small second dictionary.
        """
        removed, added = list(removed), list(added)
        words = self.words.copy()
        words.subtract(w.lower() for t in removed for w in _WORD.findall(t))
        words.update(w.lower() for t in added for w in _WORD.findall(t))
        words = +words  # drop words no longer used
        seen = dict(self._seen) if self._seen is not None else count_acronyms([])
        for sign, texts in ((-1, removed), (1, added)):
            for short, forms in count_acronyms(texts).items():
                counts = seen.get(short, Counter()).copy()
                counts.update({form: sign * n for form, n in forms.items()})
                seen[short] = +counts
        acronyms = _most_common(seen) if self._seen is not None else self.acronyms
        base = self._spells[0]
        new = Counter({w: c for w, c in words.items() if w not in base.words})
        return Vocabulary(words, acronyms, seen, [base, _spell_dictionary(new)])

    def knows(self, word: str) -> bool:
        """Whether the collection uses this word (any case), or knows it as an acronym."""
        return word.lower() in self.words or word.lower() in self._lower_acronyms

    def acronym(self, word: str) -> str:
        """The acronym `word` stands for as the corpus writes it ('' if none).

        Lower-case typing ("ldn") counts unless it is an everyday English word ("pots").
        """
        if word in self.acronyms:
            return word
        found = self._lower_acronyms.get(word.lower(), "")
        if found and (word.isupper() or word.lower() not in english_counts()):
            return found
        return ""

    def correct(self, word: str) -> str:
        """The corpus word a typo most likely meant, or `word` itself."""
        from symspellpy import Verbosity

        lower = word.lower()
        if len(word) < 3 or word.isupper() or self.knows(word) or not word.isalpha():
            return word
        english = english_counts().get(lower, 0)
        distance = 1 if len(word) <= 4 else 2
        found = [
            (s.distance, self.words[s.term], s.term)
            for spell in self._spells
            for s in spell.lookup(lower, Verbosity.CLOSEST, max_edit_distance=distance)
            if self.words.get(s.term, 0) > 0  # a word an update removed is no suggestion
        ]
        if not found:
            return word
        closest = min(d for d, _, _ in found)
        best = _Suggestion(*max((f for f in found if f[0] == closest), key=lambda f: f[1]))
        # An everyday English word the summaries do not use ("say") is kept; it is corrected
        # only when it holds the same letters as a word the summaries use often, two of them
        # swapped ("brian" → "brain"), the commonest slip in typing.
        if english and (sorted(best.term) != sorted(lower) or best.distance > 1 or best.count < 3):
            return word
        return best.term if word.islower() else best.term.capitalize() if word[0].isupper() else word

    def understand(self, question: str) -> Understood:
        """Correct typos and spell out acronyms; the result is what search uses."""
        corrections, expansions = [], []
        words = _WORD.findall(question)
        strange = [w for w in words if not self.knows(w) and w.lower() not in english_counts()]
        # Many words neither the summaries nor English know: another language, not typos.
        fix = 3 * len(strange) <= len(words)
        out, last = [], 0
        for match in _WORD.finditer(question):
            word = match.group(0)
            out.append(question[last : match.start()])
            last = match.end()
            short = self.acronym(word)
            joined = question[match.end() : match.end() + 1] in "/-" and match.end() < len(question)
            joined = joined or (match.start() > 0 and question[match.start() - 1] in "/-")
            if short and not joined:  # "ME/CFS" is how the summaries write it too
                long = self.acronyms[short]
                if long.lower() not in question.lower():
                    expansions.append((short, long))
                    out.append(f"{word} ({long})")
                    continue
            fixed = self.correct(word) if fix else word
            if fixed != word:
                corrections.append((word, fixed))
            out.append(fixed)
        out.append(question[last:])
        return Understood(question, "".join(out), tuple(corrections), tuple(expansions))
