"""Chunker tests: sections found with a Markdown parser, long sections split without losing words.

Model-free: the default `word_count` or a tiny word counter stands in for the tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.corpus.chunking import chunk_document, embed_text, sections, split_long, split_sentences, word_count
from qa.corpus.documents import Document, load_document, load_folder

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "summaries"
SEEDS = ROOT / "seeds"

STANDARD = [
    "Summary",
    "What was researched?",
    "Why was it researched?",
    "How was it researched?",
    "What has been found?",
    "Discussion",
    "Conclusion & Future Work",
]


def words(text: str) -> int:
    """A tiny token counter: one token per whitespace-separated word."""
    return len(text.split())


def corpus_path(pattern: str) -> Path:
    found = sorted(CORPUS.glob(pattern))
    assert len(found) == 1, f"{pattern!r} matches {len(found)} corpus files"
    return found[0]


def write_doc(tmp_path: Path, body: str, title: str = "T") -> Document:
    path = tmp_path / "doc.md"
    path.write_text(f"---\ntitle: \"{title}\"\ncreated: '2024-01-01'\n---\n\n{body}", encoding="utf-8")
    return load_document(path)


def sentence(n: int) -> str:
    """A distinct ten-word sentence."""
    return f"Sentence number {n} says that the fatigue worsened after exertion."


@pytest.fixture(scope="module")
def seed() -> Document:
    return load_document(next(SEEDS.glob("*.md")))


# --- sections -----------------------------------------------------------------------------


def test_seed_has_the_seven_standard_sections_in_order(seed):
    found = sections(seed)
    assert [s.heading for s in found] == STANDARD
    assert found[0].text.startswith("This comprehensive review of over three decades")
    assert found[-1].text.endswith("improve the chances of success.")
    assert all("## " not in s.text for s in found)


def test_seed_chunks_carry_doc_section_and_citation(seed):
    chunks = chunk_document(seed)
    assert [c.section for c in chunks] == STANDARD  # short sections: one chunk each
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    for chunk in chunks:
        assert chunk.doc_id == seed.doc_id
        assert chunk.chunk_id.startswith(seed.doc_id)
        assert chunk.citation == seed.citation
        assert chunk.citation.label == "Seton et al. (2024)"
        assert chunk.part == 0
        assert word_count(chunk.embed_text) <= 256


def test_chunk_text_is_the_original_passage(seed):
    chunks = {c.section: c for c in chunk_document(seed)}
    found = chunks["What has been found?"]
    assert "valacyclovir (VACV) 💊, valganciclovir (VGCV) 💊" in found.text
    for chunk, section in zip(chunk_document(seed), sections(seed)):
        assert chunk.text == section.text
        assert chunk.text in seed.body


def test_embed_text_has_title_and_section_and_no_pill(seed):
    for chunk in chunk_document(seed):
        assert chunk.embed_text.startswith(f"{seed.title}\n{chunk.section}\n")
        assert "💊" not in chunk.embed_text
    found = next(c for c in chunk_document(seed) if c.section == "What has been found?")
    assert "valacyclovir (VACV), valganciclovir (VGCV), and artesunate showed" in found.embed_text


def test_embed_text_function():
    assert embed_text("Title", "Discussion", "LDN 💊 helped.") == "Title\nDiscussion\nLDN helped."


def test_summary_without_hash_sections_uses_the_labelled_bullets():
    doc = load_document(
        corpus_path("2025-09-23_Relationships_Between_Fatigue,_Cognitive_Function*57fe1b90.md")
    )
    assert "\n## " not in doc.body
    found = sections(doc)
    assert [s.heading for s in found] == [*STANDARD[1:], "Summary", "Simple Summary"]
    headings = {s.heading.lower() for s in found}
    assert not headings & {"authors", "institutes", "publisher", "link"}
    assert found[0].text.startswith("This randomized, controlled trial investigated the effects")
    assert "$p = 0.034$" in found[3].text
    assert not any("Suzanne D Vernon" in s.text or "doi.org" in s.text for s in found)
    chunks = chunk_document(doc)
    assert len(chunks) == 8
    assert chunks[0].embed_text.startswith(f"{doc.title}\nWhat was researched?\n")


def test_trial_entry_sections():
    doc = load_document(corpus_path("*PreVitaCOV*.md"))
    found = sections(doc)
    assert [s.heading for s in found] == [
        "Overview",
        "Purpose of the Trial",
        "Trial Design & Procedure",
        "Key Eligibility Criteria",
    ]
    assert "NCT05638633" in found[0].text


def test_every_corpus_file_gives_sections():
    result = load_folder(CORPUS)
    shapes = {}
    for doc in result.documents:
        headings = tuple(s.heading for s in sections(doc))
        shapes[headings] = shapes.get(headings, 0) + 1
    assert shapes[tuple(STANDARD)] == 313
    assert sum(shapes.values()) == 317 and len(shapes) == 3
    assert () not in shapes


def test_heading_in_code_fence_or_block_quote_is_not_a_boundary(tmp_path):
    body = (
        "## First\n\nIntro text.\n\n```\n## Not a heading (code)\n```\n\n"
        "> ## Not a heading (quote)\n\nAfter the quote.\n\n"
        "    ## Not a heading (indented code)\n\n"
        "### A subheading starts a part\n\nDeeper text.\n\n"
        "## Second\n\nSecond text.\n"
    )
    doc = write_doc(tmp_path, body)
    found = sections(doc)
    assert [s.heading for s in found] == ["First", "First › A subheading starts a part", "Second"]
    first = found[0].text
    for kept in ("## Not a heading (code)", "> ## Not a heading (quote)", "After the quote."):
        assert kept in first
    assert "Deeper text." not in first and found[1].text == "Deeper text."
    assert found[2].text == "Second text."


def test_thread_timeline_entries_become_their_own_parts():
    threads = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "threads"
    doc = load_document(sorted(threads.glob("*.md"))[0])
    headings = [s.heading for s in sections(doc)]
    timeline = [h for h in headings if h.startswith("Timeline › ")]
    assert len(timeline) >= 2 and "Current Takeaway" in headings
    assert all("### " not in s.text for s in sections(doc))


def test_empty_section_is_skipped(tmp_path):
    doc = write_doc(tmp_path, "## Empty\n\n## Full\n\nText here.\n")
    assert [(s.heading, s.text) for s in sections(doc)] == [("Full", "Text here.")]


def test_body_without_any_sections_is_one_text_section(tmp_path):
    doc = write_doc(tmp_path, "Just a paragraph.\n\nAnd another one.\n")
    found = sections(doc)
    assert [s.heading for s in found] == ["Text"]
    assert found[0].text == "Just a paragraph.\n\nAnd another one."


# --- splitting ----------------------------------------------------------------------------


def test_split_sentences():
    assert split_sentences("One fact. Two facts! Is it 3? Yes. 4 more.") == [
        "One fact.",
        "Two facts!",
        "Is it 3?",
        "Yes.",
        "4 more.",
    ]
    assert split_sentences("Levels rose 2.5 times in e.g. blood.") == ["Levels rose 2.5 times in e.g. blood."]


def test_short_text_is_not_split():
    assert split_long("A short passage.", 10, words) == ["A short passage."]


def test_long_section_splits_on_sentences_and_fits(tmp_path):
    paragraphs = [" ".join(sentence(10 * p + i) for i in range(6)) for p in range(3)]
    section_text = "\n\n".join(paragraphs)  # 3 paragraphs of 60 words
    doc = write_doc(tmp_path, f"## Findings\n\n{section_text}\n\n## Other\n\nShort.\n", title="A title")
    max_tokens = 40
    chunks = chunk_document(doc, max_tokens=max_tokens, count=words)
    long = [c for c in chunks if c.section == "Findings"]
    assert len(long) >= 5
    assert [c.part for c in long] == list(range(len(long)))
    for chunk in chunks:
        assert words(chunk.embed_text) <= max_tokens, chunk.embed_text
        assert chunk.embed_text.startswith(f"A title\n{chunk.section}\n")
    for chunk in long:
        # whole sentences only: every part starts a sentence and ends one
        assert chunk.text.startswith("Sentence number ") and chunk.text.endswith("exertion."), chunk.text
    # no word lost, none duplicated, order kept
    assert " ".join(c.text for c in long).split() == section_text.split()
    assert [c.chunk_id for c in chunks] == [f"{doc.doc_id}#{n}" for n in range(len(chunks))]


def test_paragraphs_that_fit_stay_whole(tmp_path):
    paragraphs = [" ".join(sentence(10 * p + i) for i in range(2)) for p in range(3)]  # 20 words each
    doc = write_doc(tmp_path, "## S\n\n" + "\n\n".join(paragraphs) + "\n")
    chunks = chunk_document(doc, max_tokens=40, count=words)
    assert [c.text for c in chunks] == paragraphs


def test_split_keeps_closing_quotes_and_brackets(tmp_path):
    # Corpus prose has sentences ending inside quotes or brackets: 'so-called "brain fog." These'.
    text = (
        'Patients describe a so-called "brain fog." These cognitive problems were measured with a test battery. '
        "Scores fell after exercise (see Table 2.) Recovery took several days for most participants. "
        "Some called it 'crashing.' The authors discuss possible reasons for the delay in recovery."
    )
    doc = write_doc(tmp_path, f"## Summary\n\n{text}\n")
    chunks = chunk_document(doc, max_tokens=16, count=words)
    assert len(chunks) > 1
    assert " ".join(c.text for c in chunks).split() == text.split()


def test_corpus_sections_lose_no_words_when_split():
    # With a small budget every corpus section is split on sentences: the parts together must
    # still hold every word of the section, in order.
    lost = []
    for doc in load_folder(CORPUS).documents:
        budget = 60 + words(doc.title)
        chunks = chunk_document(doc, max_tokens=budget, count=words)
        assert all(words(c.embed_text) <= budget for c in chunks), doc.doc_id
        for section in sections(doc):
            joined = " ".join(c.text for c in chunks if c.section == section.heading).split()
            if joined != section.text.split():
                missing = [w for w in section.text.split() if w not in joined]
                lost.append((doc.doc_id, section.heading, missing))
    assert lost == []


def test_single_huge_sentence_still_splits(tmp_path):
    text = " ".join(f"word{i}" for i in range(300)) + "."
    doc = write_doc(tmp_path, f"## Methods\n\n{text}\n")
    max_tokens = 50
    chunks = chunk_document(doc, max_tokens=max_tokens, count=words)
    assert len(chunks) >= 300 // max_tokens
    assert all(words(c.embed_text) <= max_tokens for c in chunks)
    assert " ".join(c.text for c in chunks).split() == text.split()


def test_split_long_with_default_counter():
    text = " ".join(sentence(i) for i in range(40))  # 400 words
    parts = split_long(text, 100, word_count)
    assert len(parts) > 1
    assert all(word_count(p) <= 100 for p in parts)
    assert " ".join(parts).split() == text.split()
