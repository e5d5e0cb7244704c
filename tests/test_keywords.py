"""BM25 keyword index tests: tokenisation of compounds, search, doc_freq, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.corpus.chunking import chunk_document
from qa.corpus.documents import load_folder
from qa.index.keywords import KeywordIndex, tokenize

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "summaries"

IDS = [10, 20, 30, 40]
TEXTS = [
    "Rituximab depletes B cells in ME/CFS patients.",
    "IL-6 and inflammation rose after exercise.",
    "Fatigue, fatigue and more fatigue: patients rested for weeks.",
    "CoQ10 and NADH supplements were given for twelve weeks.",
]


@pytest.fixture(scope="module")
def index() -> KeywordIndex:
    return KeywordIndex.build(IDS, TEXTS)


# --- tokenize -----------------------------------------------------------------------------


def test_tokenize_keeps_joined_compounds():
    tokens = tokenize("IL-6 levels in ME/CFS")
    assert "il6" in tokens
    assert {"il", "6", "cfs"} <= set(tokens)  # the parts are kept too
    # "ME/CFS" and "MECFS" give the same (stemmed) compound token
    (mecfs,) = tokenize("MECFS")
    assert mecfs in tokens
    assert tokenize("IL6") == ["il6"]
    assert "coq10" in tokenize("CoQ10")
    assert "ghgl" in tokenize("gH/gL")


def test_tokenize_stems_lowercases_and_drops_stopwords():
    assert tokenize("Patients running") == tokenize("patient runs") == ["patient", "run"]
    assert tokenize("FATIGUE") == tokenize("fatigue") == tokenize("fatigued")
    assert tokenize("the and of") == []
    assert tokenize("") == []
    assert "the" not in tokenize("the treatment")


def test_tokenize_drops_single_letters_but_keeps_digits():
    tokens = tokenize("B cells, type 2 diabetes")
    assert "b" not in tokens
    assert "2" in tokens


def test_tokenize_returns_a_fresh_list_each_time():
    first = tokenize("mitochondrial dysfunction")
    expected = list(first)
    first.append("extra")  # a caller changing its own result ...
    assert tokenize("mitochondrial dysfunction") == expected  # ... must not change later calls


# --- KeywordIndex -------------------------------------------------------------------------


def test_search_finds_the_matching_chunk(index):
    hits = index.search("rituximab", 5)
    assert [i for i, _ in hits] == [10]
    assert hits[0][1] > 0


@pytest.mark.parametrize("query", ["IL-6", "il6", "IL6 inflammation"])
def test_search_matches_either_spelling_of_a_compound(index, query):
    assert index.search(query, 5)[0][0] == 20


def test_search_ranks_by_term_frequency(index):
    hits = index.search("fatigue patients", 5)
    ids = [i for i, _ in hits]
    assert ids[0] == 30
    assert set(ids) == {10, 30}
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)


def test_search_respects_k(index):
    assert len(index.search("weeks patients fatigue rituximab", 1)) == 1
    assert len(index.search("weeks", 100)) == 2  # only chunks with the word, k larger than the index


def test_unknown_or_stopword_only_query_returns_nothing(index):
    assert index.search("xyzzy quux", 5) == []
    assert index.search("the of and", 5) == []
    assert index.search("", 5) == []


def test_doc_freq(index):
    assert index.doc_freq(tokenize("patients")[0]) == 2
    assert index.doc_freq(tokenize("weeks")[0]) == 2
    assert index.doc_freq(tokenize("fatigue")[0]) == 1  # chunks, not occurrences
    assert index.doc_freq("il6") == 1
    assert index.doc_freq("xyzzy") == 0


def test_save_load_round_trip(index, tmp_path):
    folder = tmp_path / "kw"
    index.save(folder)
    assert (folder / "ids.json").is_file()
    loaded = KeywordIndex.load(folder)
    assert loaded.ids == IDS
    for query in ("rituximab", "fatigue patients", "il-6", "coq10 supplements", "xyzzy"):
        assert loaded.search(query, 4) == index.search(query, 4)
    for term in ("patient", "il6", "fatigu", "xyzzy"):
        assert loaded.doc_freq(term) == index.doc_freq(term)


def test_empty_index():
    empty = KeywordIndex.build([], [])
    assert empty.search("fatigue", 3) == []
    assert empty.doc_freq("fatigu") == 0


def test_chunk_of_only_stopwords_is_indexed_but_never_found():
    idx = KeywordIndex.build([1, 2], ["the and of", "Rituximab trial"])
    assert [i for i, _ in idx.search("rituximab", 5)] == [2]
    assert idx.search("the", 5) == []


def test_corpus_keyword_search():
    chunks = [c for d in load_folder(CORPUS).documents for c in chunk_document(d)]
    index = KeywordIndex.build(list(range(len(chunks))), [c.text for c in chunks])
    hits = index.search("daratumumab", 10)
    assert hits
    assert all("daratumumab" in chunks[i].text.lower() for i, _ in hits)
    top = chunks[index.search("rintatolimod Phase III", 1)[0][0]]
    assert "rintatolimod" in top.text.lower()
    assert index.doc_freq(tokenize("ME/CFS")[-1]) > 1000  # the joined "mecfs" compound


# --- one contract for every keyword index --------------------------------------------------

CONTRACT_TEXTS = {
    1: "Low-dose naltrexone eased pain and fatigue in some patients.",
    2: "Pacing kept people within their energy envelope.",
    3: "Cerebral blood flow fell during a tilt test.",
    4: "Valacyclovir, an antiviral, helped a few patients with EBV.",
    5: "Sleep was unrefreshing in most participants.",
    6: "IL-6 and TNF were raised after exertion.",
}


def built():
    return KeywordIndex.build(list(CONTRACT_TEXTS), list(CONTRACT_TEXTS.values()))


def layered():
    from qa.index.segments import LayeredKeywords

    base = KeywordIndex.build(
        [1, 2, 3, 99], [CONTRACT_TEXTS[1], CONTRACT_TEXTS[2], CONTRACT_TEXTS[3], "A row removed later."]
    )
    index = LayeredKeywords(base)
    index.add([4, 5, 6], [CONTRACT_TEXTS[4], CONTRACT_TEXTS[5], CONTRACT_TEXTS[6]])
    index.remove([99], ["A row removed later."])
    return index


@pytest.mark.parametrize("make", [built, layered], ids=lambda f: f.__name__)
def test_every_keyword_index_keeps_the_same_contract(make):
    index = make()
    assert index.search("naltrexone for pain", 3)[0][0] == 1
    assert index.search("antiviral valacyclovir", 3)[0][0] == 4, "a row added in a delta is found"
    assert index.search("IL-6 after exertion", 3)[0][0] == 6
    assert index.search("zorblatine", 3) == []
    assert all(row != 99 for row, _ in index.search("row removed later", 6)), "a removed row is gone"
    assert index.doc_freq(tokenize("naltrexone")[0]) == 1 and index.doc_freq("zorblatin") == 0
    assert index.knows_stem_of("participant") and not index.knows_stem_of("zorblatine")


@pytest.mark.parametrize("make", [built, layered], ids=lambda f: f.__name__)
def test_every_keyword_index_leaves_out_rows_not_allowed_before_taking_the_top(make):
    import numpy as np

    index = make()
    query = "patients pain antiviral energy sleep blood IL-6"
    everything = index.search(query, 10)
    assert len(everything) >= 4
    allowed = np.zeros(8, dtype=bool)
    allowed[[2, 4, 5]] = True  # one base row, two added rows (and 99, removed, is past the end)
    found = index.search(query, 2, allowed=allowed)
    assert found == [(i, s) for i, s in everything if i in (2, 4, 5)][:2]
    assert index.search(query, 5, allowed=np.zeros(8, dtype=bool)) == []
