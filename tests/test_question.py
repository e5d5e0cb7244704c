"""The part of a question the models read (qa/search/question.py), with a word count as the tokenizer."""

from __future__ import annotations

from qa.search.question import clean_text, fit_question


def words(text: str) -> int:
    return len(text.split())


def test_a_question_that_fits_is_read_whole():
    question = "Does low-dose naltrexone help with fatigue?"
    assert fit_question(question, words, budget=10) is question


def test_a_long_story_keeps_its_asking_sentences_from_the_last_one_back():
    story = "My son got ill in 2021 after a virus. " * 10
    text = story + "He sleeps all day. Does pacing help? Has anything helped with sleep?"
    assert fit_question(text, words, budget=9) == "Does pacing help? Has anything helped with sleep?"
    assert fit_question(text, words, budget=6) == "Has anything helped with sleep?"


def test_a_story_without_a_question_mark_keeps_its_last_sentences():
    text = "I was fine until 2020. " * 10 + "Now I want to know about treatments for brain fog."
    assert fit_question(text, words, budget=12) == "Now I want to know about treatments for brain fog."


def test_one_overlong_sentence_is_cut_at_a_word_within_the_budget():
    text = " ".join(f"word{n}" for n in range(100)) + "?"
    cut = fit_question(text, words, budget=7)
    assert cut == "word0 word1 word2 word3 word4 word5 word6"
    assert words(cut) <= 7


def test_text_without_spaces_is_cut_by_characters():
    def pieces(text: str) -> int:  # one piece a character, as punctuation and CJK are read
        return len(text)

    assert fit_question("病" * 50, pieces, budget=12) == "病" * 12
    assert fit_question("!?" * 40, pieces, budget=5) == "!?!?!"


def test_lone_surrogates_become_replacement_characters():
    cleaned = clean_text("LDN \ud800 help")
    assert "\ud800" not in cleaned and "\ufffd" in cleaned
    cleaned.encode("utf-8")  # would raise with the surrogate left in
