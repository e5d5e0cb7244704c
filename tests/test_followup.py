"""Follow-up questions: which short questions lean on the previous one, and "tell me more about N"."""

from __future__ import annotations

import pytest

from qa.search.followup import MAX_FOLLOWUP_WORDS, is_followup, wants_study, with_context
from qa.serve.app import EXAMPLES

ANTIVIRAL = "Has any antiviral helped ME/CFS patients?"


@pytest.mark.parametrize(
    "question",
    [
        "and in Long COVID?",
        "And in children?",
        "What about Long COVID?",
        "how about rintatolimod?",
        "Does it help with PEM?",
        "Is it safe?",
        "Any trials of it?",
        "Are they recruiting patients?",
        "same for Long COVID",
        "What about the side effects of those?",
        "or valganciclovir?",
        "Did it work in the trial?",
    ],
)
def test_short_questions_leaning_on_the_previous_one_are_followups(question):
    assert is_followup(question)


@pytest.mark.parametrize(
    "question",
    [
        "What is PEM?",
        "Does low-dose naltrexone help?",
        ANTIVIRAL,
        "What happens to the body after exertion (PEM)?",
        "Which blood markers differ after exercise?",
        "rintatolimod",
        "",
        "   ",
        # Long, complete questions stay whole even with a pronoun in them.
        "Is there any evidence that rintatolimod improves exercise tolerance in ME/CFS patients?",
        "What did the trials of valacyclovir find about fatigue in those with herpesvirus reactivation?",
    ],
)
def test_standalone_questions_are_not_followups(question):
    assert not is_followup(question)


def test_followups_are_limited_in_length():
    short = "and " + " ".join(["word"] * (MAX_FOLLOWUP_WORDS - 1))
    assert is_followup(short)
    assert not is_followup(short + " more")


@pytest.mark.parametrize(
    "question",
    [
        # The app's own example: clicked after any question, it is glued to that question.
        "Are there blood tests that can diagnose ME/CFS?",
        "Is there a cure for ME/CFS?",
        "Is there a blood test for Long COVID?",
    ],
)
def test_complete_questions_with_there_or_that_are_not_followups(question):
    """Existential "there" and the relative "that" do not point back at the last question."""
    assert not is_followup(question)


def test_no_example_question_is_read_as_a_followup():
    assert [q for q in EXAMPLES if is_followup(q)] == []


def test_with_context_joins_a_followup_to_the_previous_question():
    assert with_context("and in Long COVID?", ANTIVIRAL) == f"{ANTIVIRAL} and in Long COVID?"
    assert (
        with_context("  Does it help with PEM? ", f"  {ANTIVIRAL}\n") == f"{ANTIVIRAL} Does it help with PEM?"
    )


@pytest.mark.parametrize(
    "question",
    [
        "What is PEM?",
        "Does low-dose naltrexone help?",
        "Is there any evidence that rintatolimod improves exercise tolerance in ME/CFS patients?",
        "Which studies measured lactate in the blood of patients during and after exercise?",
    ],
)
def test_with_context_leaves_standalone_questions_unchanged(question):
    assert with_context(question, ANTIVIRAL) == question
    assert with_context(f"  {question}  ", ANTIVIRAL) == question


def test_with_context_without_a_previous_question():
    assert with_context("and in Long COVID?", "") == "and in Long COVID?"
    assert with_context("  What is PEM?  ", "") == "What is PEM?"


@pytest.mark.parametrize(
    ("message", "number"),
    [
        ("tell me more about 2", 2),
        ("Tell me more about 1", 1),
        ("tell me more about study 3", 3),
        ("Can you tell me more about number 4?", 4),
        ("open 5", 5),
        ("open #3", 3),
        ("open no. 2", 2),
        ("show study 4", 4),
        ("details of 1", 1),
        ("Details on 2 please", 2),
        ("read 10", 10),
    ],
)
def test_wants_study_reads_the_study_number(message, number):
    assert wants_study(message) == number


@pytest.mark.parametrize(
    "message",
    [
        "What is PEM?",
        ANTIVIRAL,
        "tell me more about LDN",
        "Show me trials of rituximab",
        "and in Long COVID?",
        "Does vitamin B12 help?",
        "Is study quality in ME/CFS improving?",
    ],
)
def test_wants_study_is_none_for_questions(message):
    assert wants_study(message) is None


@pytest.mark.parametrize(
    "message",
    [
        "Did rintatolimod show 30% improvement in exercise tolerance?",
        "Do the results show 2 subgroups of patients?",
        "Tell me more about 2024 research on low-dose naltrexone",
    ],
)
def test_wants_study_is_none_for_numbers_that_are_not_study_numbers(message):
    """A percentage, a count or a year after "show"/"more about" is part of a question."""
    assert wants_study(message) is None


@pytest.mark.parametrize(
    "question",
    [
        "Is it safe to take metformin?",
        "Is it worth trying to pace?",
        "Would it be possible that antivirals help?",
    ],
)
def test_a_forward_pointing_it_names_a_new_topic(question):
    """ "Is it safe to take metformin?" after an LDN question is about metformin, searched alone."""
    assert not is_followup(question)
    assert with_context(question, "Does low-dose naltrexone help?") == question


@pytest.mark.parametrize(
    ("message", "number"),
    [
        ("more on 3", 3),
        ("More on study 2.", 2),
        ("show me the second one", 2),
        ("open study 2", 2),
        ("open the first paper", 1),
        ("show me the 3rd one", 3),
        ("tell me more about the last one", -1),
    ],
)
def test_wants_study_reads_ordinals_and_short_forms(message, number):
    assert wants_study(message) == number
