"""A reader's conversation, kept on the server and changed in place by each event of the page.

Gradio hands every event of a session the same state object and stores what a handler returns in
its place. When the conversation was a value returned by each event, an answer computed from an
older copy overwrote whatever happened meanwhile: a question asked while another was searched was
lost, and a slow answer brought back a conversation the reader had just cleared. Here no handler
returns the conversation: each question takes its numbered turn at once (`ask`), the answering
event fills the oldest open turn (`answering`, one at a time per conversation, so a follow-up reads
the answer before it), and "New conversation" starts a new epoch whose turns a late answer for the
old one cannot touch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from qa.present.render import turn_html

SEARCHING = '<p class="qa-wait" role="status">Searching…</p>'


@dataclass(frozen=True)
class Turn:
    """One question and, once answered, its HTML and what a follow-up needs from it."""

    number: int
    question: str
    html: str = ""  # empty while the question is being searched
    searched: str = ""  # the question as searched ("" when the turn was no search)
    studies: tuple[str, ...] = ()  # the cited studies' ids, in the order shown ("" when no search)
    labels: tuple[tuple[str, str], ...] = ()  # the "Cited study" picker's (label, id) choices
    taken: bool = False  # an event is answering it

    @property
    def answered(self) -> bool:
        """Whether the answer is in."""
        return bool(self.html)


@dataclass(frozen=True)
class Claim:
    """An open turn an event is answering, with what was asked and answered before it."""

    epoch: int
    turn: Turn
    previous: str  # the question before it, as searched ("" for the first)
    studies: tuple[str, ...]  # the studies the answer before it cited


class Conversation:
    """The turns of one reader's conversation, in the order asked; safe to share between events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the fields below
        self._answering = threading.Lock()  # one answer at a time, in the order asked
        self._epoch = 0
        self._turns: list[Turn] = []

    def __deepcopy__(self, memo: dict) -> Conversation:
        # Gradio deep-copies a state's initial value for each new session: a new, empty one.
        return Conversation()

    def ask(self, question: str) -> Turn:
        """Open a numbered turn for `question`, shown as being searched until it is answered."""
        with self._lock:
            turn = Turn(len(self._turns) + 1, question)
            self._turns.append(turn)
            return turn

    @contextmanager
    def answering(self) -> Iterator[Claim | None]:
        """The oldest open turn, claimed for the caller until the block ends (None: all are taken)."""
        with self._answering:
            with self._lock:
                claim = self._claim()
            yield claim

    def _claim(self) -> Claim | None:
        previous, studies = "", ()
        for n, turn in enumerate(self._turns):
            if not turn.answered and not turn.taken:
                self._turns[n] = replace(turn, taken=True)
                return Claim(self._epoch, self._turns[n], previous, studies)
            # A turn that opened a study or failed keeps the search before it as the context.
            previous = turn.searched or previous
            studies = turn.studies or studies
        return None

    def settle(self, claim: Claim, answered: Turn) -> bool:
        """Put the answer in its turn; False when the conversation was cleared since the claim."""
        with self._lock:
            if claim.epoch != self._epoch:
                return False
            self._turns[claim.turn.number - 1] = replace(answered, number=claim.turn.number, taken=True)
            return True

    def clear(self) -> None:
        """Start again: no turns, and answers still being searched for the old ones are dropped."""
        with self._lock:
            self._epoch += 1
            self._turns = []

    def html(self) -> str:
        """The conversation as shown: answered turns, and open ones with "Searching…"."""
        with self._lock:
            turns = list(self._turns)
        return "".join(
            t.html or turn_html(f"t{t.number}", t.question, SEARCHING, pending=True) for t in turns
        )

    def turns(self) -> list[Turn]:
        """The turns so far, in the order asked."""
        with self._lock:
            return list(self._turns)
