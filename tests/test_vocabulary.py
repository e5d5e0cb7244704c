"""Acronyms learned from the texts themselves, and typos corrected against them (no model)."""

from __future__ import annotations

from qa.search.vocabulary import Vocabulary, find_acronyms

TEXTS = [
    "Low-dose naltrexone (LDN) was given for 12 weeks. LDN improved brain fog in some patients.",
    "Postural orthostatic tachycardia syndrome (POTS) is common; heart rate rose on standing.",
    "Mast cell activation syndrome (MCAS) was screened (n=20) in 2024 (2024).",
    "Patients with ME/CFS reported worse brain fog and fatigue after exertion than controls.",
    "Intravenous immunoglobulin (IVIG) did not help; the brain scans were normal.",
]


def test_acronyms_come_with_their_long_forms_from_the_text():
    found = find_acronyms(TEXTS)
    assert found["LDN"] == "low-dose naltrexone"
    assert found["POTS"] == "postural orthostatic tachycardia syndrome"
    assert found["MCAS"] == "mast cell activation syndrome"
    assert found["IVIG"] == "intravenous immunoglobulin"
    assert "n=20" not in found and "2024" not in found  # counts and years are not acronyms


def test_an_acronym_typed_alone_is_spelled_out():
    vocabulary = Vocabulary.from_texts(TEXTS)
    understood = vocabulary.understand("LDN")
    assert understood.searched == "LDN (low-dose naltrexone)"
    assert understood.expansions == (("LDN", "low-dose naltrexone"),)


def test_lower_case_acronyms_count_unless_they_are_everyday_words():
    vocabulary = Vocabulary.from_texts(TEXTS)
    assert "low-dose naltrexone" in vocabulary.understand("does ldn help").searched
    assert vocabulary.understand("pots and pans").searched == "pots and pans"


def test_typos_are_corrected_against_the_corpus_words():
    vocabulary = Vocabulary.from_texts(TEXTS)
    understood = vocabulary.understand("does ldn hlp with brian fog")
    assert understood.corrections == (("hlp", "help"), ("brian", "brain"))
    assert understood.searched == "does ldn (low-dose naltrexone) help with brain fog"


def test_everyday_words_and_unknown_drug_names_are_left_alone():
    vocabulary = Vocabulary.from_texts(TEXTS)
    for question in ("What do studies say about fatigue?", "Does hydroxychloroquine help?"):
        understood = vocabulary.understand(question)
        assert understood.searched == question and not understood.corrections


def test_compounds_written_like_the_corpus_are_not_expanded():
    vocabulary = Vocabulary.from_texts(
        [*TEXTS, "Myalgic encephalomyelitis (ME) and chronic fatigue syndrome (CFS)."]
    )
    assert (
        vocabulary.understand("Is there a blood test for ME/CFS?").searched
        == "Is there a blood test for ME/CFS?"
    )


def test_acronyms_are_learned_the_same_whatever_order_the_texts_come_in():
    from qa.search.vocabulary import Vocabulary

    texts = [
        "Antibodies against the g protein-coupled receptor (GPCR) were raised.",
        "Antibodies against g-protein-coupled receptors (GPCR) were measured.",
        "Low-dose naltrexone (LDN) helped some patients.",
    ]
    at_once = Vocabulary.from_texts(texts).acronyms
    assert Vocabulary.from_texts(reversed(texts)).acronyms == at_once
    by_updates = Vocabulary.from_texts(texts[1:]).updated([], texts[:1]).acronyms
    assert by_updates == at_once and at_once["GPCR"] == "g protein-coupled receptor"
