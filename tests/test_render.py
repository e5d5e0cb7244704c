"""Chat HTML: document text is escaped everywhere, links are http(s) only, highlights are <mark>.

Objects are built by hand: these tests never load the model.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from qa.corpus.chunking import Chunk
from qa.corpus.documents import Citation, Document
from qa.corpus.kinds import source_kind, study_types
from qa.present.answer import CLOSEST, DISCLAIMER, NOT_COVERED
from qa.present.render import (
    answer_html,
    answer_text,
    filters_text,
    share_query,
    source_html,
    study_html,
    turn_html,
)
from qa.present.text import link_html, marked_html, math_text, reader_html, reader_text
from qa.present.view import Sentence, answer_view, study_view, view_from_dict, view_to_dict
from qa.search.types import Answer, Filters, Passage, StudyHit

ALLOWED_TAGS = {"div", "span", "strong", "em", "code", "sub", "sup", "a", "blockquote", "mark", "p", "br"}
ALLOWED_TAGS |= {
    "h2",
    "h3",
    "h4",
    "h5",
    "ul",
    "li",
    "q",
    "article",
    "section",
    "details",
    "summary",
    "button",
}
SAFE_ATTRIBUTES = {
    "class",
    "href",
    "target",
    "rel",
    "data-rank",
    "id",
    "aria-labelledby",
    "aria-label",
    "role",
}
SAFE_ATTRIBUTES |= {"type", "data-copy", "data-share", "tabindex"}
SCRIPT = "<script>alert('x')</script>"
IMG = '<img src=x onerror="alert(1)">'


class Parsed(HTMLParser):
    """Tags, attributes and text of an HTML fragment, as a browser would see them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.tags if t == tag]


def assert_safe(html: str) -> Parsed:
    """Only the renderer's own tags, no event handlers, and every href an http(s) URL."""
    parsed = Parsed(html)
    assert {t for t, _ in parsed.tags} <= ALLOWED_TAGS, {t for t, _ in parsed.tags} - ALLOWED_TAGS
    for tag, attrs in parsed.tags:
        assert not [a for a in attrs if a.lower().startswith("on")], (tag, attrs)
        assert set(attrs) <= SAFE_ATTRIBUTES, (tag, attrs)
    for attrs in parsed.all("a"):
        if (attrs["href"] or "").startswith("#"):  # a digest's [1] to its study card
            continue
        assert (attrs["href"] or "").startswith(("https://", "http://")), attrs
        assert attrs["target"] == "_blank" and "noopener" in (attrs["rel"] or "")
    return parsed


def citation(**changes) -> Citation:
    fields = dict(
        label="Seton et al. (2024)",
        title="Advancing Research and Treatment",
        authors="Katharine A. Seton, Jesper Mehlsen",
        year="2024",
        publisher="Journal of Clinical Medicine",
        doi="10.3390/jcm13020325",
        tags=("Landmark", "Treatment"),
        published="2024-01-06",
    )
    fields.update(changes)
    return Citation(**fields)


def chunk(text: str, section: str = "What has been found?", cite: Citation | None = None) -> Chunk:
    cite = cite or citation()
    return Chunk("seed.md#0", "seed.md", section, text, f"{cite.title}\n{section}\n{text}", cite)


def study(rank: int = 1, cite: Citation | None = None, texts=("Valacyclovir helped some patients.",), **kw):
    cite = cite or citation()
    passages = tuple(Passage(chunk(t, cite=cite), 0.03 - 0.001 * n, 0.61, 7.2) for n, t in enumerate(texts))
    return StudyHit(rank, f"study-{rank}.md", cite, passages[0].score, passages, **kw)


HOSTILE = citation(
    label=f"O'Brien & <Quux> {IMG} (2025)",
    title=f'{SCRIPT} "LDN" & <b>trial</b>',
    publisher="J. <i>Markup</i> & Safety",
    tags=("Treatment", "<b>Bold</b>"),
    doi="",
    link="javascript:alert(1)",
)


# --- marked_html -------------------------------------------------------------------------------


def test_marked_sentences_are_wrapped_in_mark():
    text = "LDN was tested. It helped sleep. Pain did not change."
    sentences = [
        Sentence("LDN was tested.", False, 0.2),
        Sentence("It helped sleep.", True, 0.6),
        Sentence("Pain did not change.", True, 0.58),
    ]
    assert marked_html(text, sentences) == (
        "LDN was tested. <mark>It helped sleep.</mark> <mark>Pain did not change.</mark>"
    )


def test_marked_html_escapes_inside_and_outside_marks():
    text = f"Dose < 4.5 mg & more. {SCRIPT} was in the notes. Fatigue fell by 30%."
    sentences = [
        Sentence("Dose < 4.5 mg & more.", True, 0.7),
        Sentence(f"{SCRIPT} was in the notes.", False, 0.1),
        Sentence("Fatigue fell by 30%.", True, 0.65),
    ]
    html = marked_html(text, sentences)
    assert html.startswith("<mark>Dose &lt; 4.5 mg &amp; more.</mark> &lt;script&gt;")
    parsed = assert_safe(html)
    assert parsed.text == text
    assert [m for t, m in parsed.tags if t == "mark"] == [{}, {}]


def test_marked_html_keeps_text_when_a_sentence_is_not_found():
    text = "First <one>. Second one."
    html = marked_html(text, [Sentence("Missing.", True, 0.9), Sentence("Second one.", True, 0.8)])
    assert html == "First &lt;one&gt;. <mark>Second one.</mark>"
    assert marked_html(text, []) == "First &lt;one&gt;. Second one."


# --- link_html ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "//evil.example/x",
        "",
    ],
)
def test_only_http_links_become_anchors(url):
    html = link_html(url, "Read <the> paper")
    assert html == "Read &lt;the&gt; paper"
    assert "<a" not in html


def test_link_attributes_are_escaped():
    html = link_html('https://example.org/a"onmouseover="alert(1)&b=<c>', 'A "paper" <b>')
    parsed = assert_safe(html)
    (attrs,) = parsed.all("a")
    assert attrs["href"] == 'https://example.org/a"onmouseover="alert(1)&b=<c>'
    assert parsed.text == 'A "paper" <b>'
    assert '"onmouseover' not in html


# --- study_html --------------------------------------------------------------------------------


def test_study_shows_label_title_meta_tags_and_doi_link():
    html = study_html(study_view(study(rank=2)))
    parsed = assert_safe(html)
    assert parsed.all("article")[0]["class"] == "qa-study"
    assert parsed.all("h3")[0]["class"] == "qa-cite"
    assert "2. Seton et al. (2024) — Advancing Research and Treatment" in parsed.text
    assert "Journal of Clinical Medicine · 2024 · Paper (DOI)" in parsed.text
    (link,) = parsed.all("a")
    assert link["href"] == "https://doi.org/10.3390/jcm13020325"
    assert link["aria-label"] == "Paper (DOI): Seton et al. (2024)"
    assert [a["class"] for a in parsed.all("span")].count("qa-tag") == 2
    assert "What has been found?" in parsed.text and "Valacyclovir helped some patients." in parsed.text


def test_study_escapes_label_title_publisher_tags_section_and_passage():
    hit = study(cite=HOSTILE, texts=(f"Before {IMG} after & {SCRIPT}.",), also=("<dup>.md",))
    hit = StudyHit(
        hit.rank,
        hit.doc_id,
        hit.citation,
        hit.score,
        (Passage(chunk(hit.passages[0].chunk.text, section="<i>Summary</i>", cite=HOSTILE), 0.02),),
        hit.also,
    )
    html = study_html(study_view(hit))
    parsed = assert_safe(html)
    assert parsed.all("a") == [], "a javascript: link must not be rendered as a link"
    assert "javascript:" not in html
    for raw in (HOSTILE.label, HOSTILE.title, HOSTILE.publisher, "<b>Bold</b>", "<i>Summary</i>"):
        assert raw in parsed.text
    assert f"Before {IMG} after & {SCRIPT}." in parsed.text
    assert "Also summarised once more in this collection." in parsed.text and "<dup>" not in parsed.text


def test_study_marks_the_highlighted_sentences_of_each_passage():
    texts = ("Valacyclovir helped some patients. Others saw no change.", "Artesunate is being tested.")
    highlights = [
        [
            Sentence("Valacyclovir helped some patients.", True, 0.7),
            Sentence("Others saw no change.", False, 0.3),
        ],
        [Sentence("Artesunate is being tested.", False, 0.2)],
    ]
    html = study_html(study_view(study(texts=texts), highlights))
    assert "<mark>Valacyclovir helped some patients.</mark> Others saw no change." in html
    assert html.count("<mark>") == 1
    assert html.count('<blockquote class="qa-passage">') == 2
    # Fewer highlight lists than passages: the rest are shown plain.
    html = study_html(study_view(study(texts=texts), highlights[:1]))
    assert "Artesunate is being tested." in html and html.count("<mark>") == 1


def test_study_without_any_link_shows_no_anchor():
    html = study_html(study_view(study(cite=citation(doi="", link=""))))
    assert assert_safe(html).all("a") == []
    assert "Journal of Clinical Medicine · 2024" in html


@pytest.mark.parametrize("link", ["", "javascript:alert(1)"])
def test_study_without_a_usable_link_does_not_offer_to_read_the_paper(link):
    """A "Paper" that is plain text promises a link that is not there."""
    html = study_html(study_view(study(cite=citation(doi="", link=link))))
    assert "Paper" not in Parsed(html).text


# --- answer_html -------------------------------------------------------------------------------


def test_covered_answer_has_no_not_covered_note():
    answer = Answer("Has any antiviral helped?", (study(1), study(2)), True)
    html = answer_html(
        answer_view(answer, {1: [[Sentence("Valacyclovir helped some patients.", True, 0.7)]]})
    )
    parsed = assert_safe(html)
    assert NOT_COVERED not in parsed.text and CLOSEST not in parsed.text
    assert html.count('class="qa-study"') == 2
    assert html.count("<mark>") == 1
    assert parsed.text.rstrip().endswith(DISCLAIMER)


def test_not_covered_answer_shows_the_note_and_closest_passages():
    answer = Answer(
        "Does <b>zorblatine</b> help?", (study(1),), False, "not in any summary: <b>zorblatine</b>"
    )
    html = answer_html(answer_view(answer))
    parsed = assert_safe(html)
    assert "No summary seems to answer" in parsed.text
    assert "Closest passages" in parsed.text
    assert "not in any summary: <b>zorblatine</b>" in parsed.text
    assert html.index("qa-notcovered") < html.index("qa-study")
    assert "Valacyclovir helped some patients." in parsed.text


def test_answer_without_studies_shows_the_note_only():
    html = answer_html(answer_view(Answer("", (), False, "empty question")))
    parsed = assert_safe(html)
    assert "No summary seems to answer" in parsed.text and "empty question" in parsed.text
    assert "Closest passages" not in parsed.text and "qa-study" not in html


def test_answer_lists_active_filters_escaped():
    filters = Filters(("Treatment", "<b>News</b>"), "2024", "2025-99")
    html = answer_html(answer_view(Answer("exercise", (study(1),), True, "", filters)))
    parsed = assert_safe(html)
    assert "Filters: tagged Treatment or <b>News</b>; published 2024 to 2025" in parsed.text
    assert "Filters:" not in answer_html(answer_view(Answer("exercise", (study(1),), True)))


def test_answer_with_a_hostile_study_is_safe():
    answer = Answer("q", (study(1, cite=HOSTILE, texts=(IMG,)),), False, SCRIPT)
    html = answer_html(answer_view(answer, {1: [[Sentence(IMG, True, 0.9)]]}))
    parsed = assert_safe(html)
    assert parsed.all("a") == [] and "<img" not in html and "<script" not in html
    assert f"<mark>{IMG.replace('<', '&lt;').replace('>', '&gt;')}</mark>" in html
    assert SCRIPT in parsed.text


# --- source_html -------------------------------------------------------------------------------


def document(**changes) -> Document:
    fields = dict(
        doc_id="2024-01-06_seed.md",
        path=Path("2024-01-06_seed.md"),
        title="Advancing Research and Treatment",
        body="",
        content_hash="",
        tags=("Landmark", "Treatment"),
        published="2024-01-06",
        label="Seton et al. (2024)",
        year="2024",
        authors="Katharine A. Seton",
        institutes="Quadram Institute Bioscience",
        publisher="Journal of Clinical Medicine",
        link="https://doi.org/10.3390/jcm13020325",
        doi="10.3390/jcm13020325",
    )
    fields.update(changes)
    return Document(**fields)


def test_source_shows_metadata_and_every_section():
    parts = [
        ("Summary", "A review."),
        ("What has been found?", "Antivirals helped some."),
        ("Discussion", "More."),
    ]
    html = source_html(document(), parts)
    parsed = assert_safe(html)
    assert [a["class"] for a in parsed.all("h4")] == ["qa-section"] * 3
    assert "Seton et al. (2024) — Advancing Research and Treatment" in parsed.text
    for label in ("Authors:", "Institutes:", "Publisher:", "Published:", "Tags:"):
        assert label in parsed.text
    (link,) = parsed.all("a")
    assert link["href"] == "https://doi.org/10.3390/jcm13020325"
    assert "2024-01-06_seed.md" not in parsed.text, "file names mean nothing to readers"
    assert (
        parsed.text.index("Summary")
        < parsed.text.index("What has been found?")
        < parsed.text.index("Discussion")
    )


def test_source_escapes_everything_from_the_document():
    doc = document(
        doc_id=f"{IMG}.md",
        title=SCRIPT,
        label="<b>Label</b>",
        authors=IMG,
        institutes="<i>Inst</i>",
        publisher="<u>Pub</u>",
        tags=("<b>Tag</b>",),
        link="javascript:alert(1)",
        doi="",
        extra={"<k>Trial ID": "<v>NCT0"},
    )
    html = source_html(doc, [("<h1>Head</h1>", f"Text {SCRIPT} & {IMG}")])
    parsed = assert_safe(html)
    assert parsed.all("a") == [] and "javascript:" in parsed.text and "<script" not in html
    for raw in (
        SCRIPT,
        "<b>Label</b>",
        IMG,
        "<i>Inst</i>",
        "<u>Pub</u>",
        "<b>Tag</b>",
        "<k>Trial ID:",
        "<v>NCT0",
    ):
        assert raw in parsed.text, raw
    assert "<h1>Head</h1>" in parsed.text and f"Text {SCRIPT} & {IMG}" in parsed.text
    assert ".md" not in parsed.text


def test_source_without_a_link_says_so():
    parsed = assert_safe(source_html(document(link="", doi=""), [("Summary", "Text.")]))
    assert "no link given" in parsed.text and parsed.all("a") == []


# --- clean text: Markdown and LaTeX --------------------------------------------------------------


def test_markdown_in_a_passage_is_rendered_safely_or_reduced_to_text():
    md = "**Dextro-Naltrexone** is *only* one [link](https://example.org/x) &beta; `IL6` <b>raw</b>"
    html = reader_html(md)
    parsed = assert_safe(html)
    assert "<strong>Dextro-Naltrexone</strong>" in html and "<em>only</em>" in html
    assert parsed.all("a") == [] and "<b>" not in html
    assert parsed.text == "Dextro-Naltrexone is only one link β IL6 <b>raw</b>"
    assert reader_text(md) == parsed.text
    assert reader_text("- one\n* two") == "• one\n• two"


@pytest.mark.parametrize(
    ("tex", "text"),
    [
        ("$VO_{2}$ peak", "VO₂ peak"),
        ("${}^{23}Na$ MRI", "²³Na MRI"),
        ("$Ca^{2+}$ flux", "Ca²⁺ flux"),
        ("$\\gamma\\delta$ T cells", "γδ T cells"),
        ("($p = 0.034$)", "(p = 0.034)"),
        ("$\\ge10$ days", "≥10 days"),
        # Money, not math: "$582 million ($5 more)" and "US$1 trillion" stay as written.
        ("€500 million ($582 million) and US$1 trillion", "€500 million ($582 million) and US$1 trillion"),
    ],
)
def test_latex_is_shown_readably_and_money_is_left_alone(tex, text):
    assert reader_text(tex) == text
    assert "$" not in reader_html("$VO_{2}$") and "VO<sub>2</sub>" in reader_html("$VO_{2}$")
    assert math_text("Tg^{+/-ATG13}") == "Tg^(+/-ATG13)"


# --- kind of source and study type ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({}, "Paper (DOI)"),
        ({"publisher": "medRxiv (Preprint)"}, "Preprint (DOI)"),
        ({"doi": "", "link": "https://www.youtube.com/watch?v=x"}, "Video"),
        ({"doi": "", "link": "https://youtu.be/x"}, "Video"),
        ({"doi": "", "link": "https://clinicaltrials.gov/study/NCT1"}, "Trial registration"),
        ({"doi": "", "link": "https://www.medscape.com/a", "tags": ("News",)}, "News"),
        ({"doi": "", "link": "https://pubmed.ncbi.nlm.nih.gov/1/"}, "Paper (PubMed)"),
        ({"doi": "", "link": "https://example.org/page"}, "Web page"),
        ({"doi": "", "link": ""}, ""),
    ],
)
def test_kind_of_source_comes_from_the_link_and_publisher(changes, kind):
    assert source_kind(citation(**changes)) == kind


def test_study_type_only_where_the_summary_says_so():
    assert study_types(["A randomised, double-blind, placebo-controlled trial of 80 adults."]) == [
        "Randomised",
        "Placebo-controlled",
        "Double-blind",
    ]
    assert study_types(["Mice lacking the gene were infected.", "Cells were studied in vitro."]) == [
        "Animal study",
        "Lab study (in vitro)",
    ]
    # What should come next is not what was done; nothing named, nothing guessed.
    assert study_types(["Future randomised trials are needed.", "Patients answered questions."]) == []
    # A review names the designs of what it pooled; those are not its own.
    assert study_types(["This systematic review pooled randomised trials in mice."]) == ["Systematic review"]


# --- digest, copy text, share link, filters in words -----------------------------------------------


def _highlighted():
    texts = ("Valacyclovir helped some patients. Others saw no change. Dosing varied.",)
    answer = Answer("Which antiviral helped?", tuple(study(r, texts=texts) for r in (1, 2, 3, 4)), True)
    marks = [
        Sentence("Valacyclovir helped some patients.", True, 0.7),
        Sentence("Others saw no change.", True, 0.68),
        Sentence("Dosing varied.", False, 0.2),
    ]
    return answer, {r: [marks] for r in (1, 2, 3, 4)}


def test_digest_quotes_the_best_marked_sentences_of_the_top_three_studies():
    answer, highlights = _highlighted()
    short = [(q.rank, q.text) for q in answer_view(answer, highlights).digest]
    assert [rank for rank, _ in short] == [1, 1, 2, 2, 3, 3]
    assert {s for _, s in short} == {"Valacyclovir helped some patients.", "Others saw no change."}
    assert answer_view(Answer("q", answer.studies, False), highlights).digest == (), "not covered: no digest"
    html = answer_html(answer_view(answer, highlights), turn="t1")
    assert_safe(html)
    assert html.index("qa-digest") < html.index("qa-study")
    assert re.search(r'<a class="qa-ref" id="t1-r\d" href="#t1-s2"', html) and 'id="t1-s2"' in html
    assert "<q>Valacyclovir helped some patients.</q>" in html


def test_copy_text_has_numbered_citations_and_links_and_no_markup():
    answer, highlights = _highlighted()
    text = answer_text(answer_view(answer, highlights), "Which antiviral helped?")
    assert "<" not in text
    assert text.startswith("**Question:** Which antiviral helped?")
    assert "- “Valacyclovir helped some patients.” [1]" in text
    assert "[4] Seton et al. (2024). Advancing Research and Treatment. Journal of Clinical Medicine." in text
    assert "Paper (DOI): https://doi.org/10.3390/jcm13020325" in text and text.endswith(DISCLAIMER)


def test_share_link_and_filters_in_words():
    filters = Filters(("Treatment",), "2025", "2026-99")
    assert share_query("LDN & sleep?", filters, "newest") == (
        "?q=LDN+%26+sleep%3F&tag=Treatment&from=2025&to=2026&sort=newest"
    )
    assert filters_text(Filters((), "2025", "")) == "published 2025 or later"
    assert filters_text(Filters((), "", "2024-99")) == "published 2024 or earlier"
    assert (
        filters_text(Filters(("News", "Trial"), "2024", "2024-99"))
        == "tagged News or Trial; published in 2024"
    )


def test_filters_nothing_passes_say_so():
    html = answer_html(
        answer_view(Answer("q", (), False, "no passage matched", Filters((), "2030", ""))), matching=0
    )
    assert "No study matches these filters" in Parsed(html).text
    assert "No summary seems to answer" not in Parsed(html).text


def test_turn_escapes_the_question_and_the_copy_text():
    html = turn_html("t1", f"Q {SCRIPT}", "<p>body</p>", copy=f'say "{IMG}"', share="?q=a%22b")
    parsed = assert_safe(html)
    assert parsed.all("h2")[0]["id"] == "t1-q" and f"Q {SCRIPT}" in parsed.text
    (copy,) = [a for t, a in parsed.tags if t == "button" and a["class"] == "qa-copy"]
    assert copy["data-copy"] == f'say "{IMG}"'


def test_copied_not_covered_answer_lists_the_closest_studies_under_that_heading():
    answer = Answer("Does zorblatine help?", (study(1), study(2)), False, "No summary mentions zorblatine.")
    lines = answer_text(answer_view(answer), "Does zorblatine help?").splitlines()
    closest = lines.index(CLOSEST)
    assert lines[closest + 1].startswith("[1] ") and "Studies:" not in lines


def test_a_card_gives_the_study_year_not_the_summary_date():
    cite = citation(label="Renz-Polster et al. (2024)", year="2024", published="2025-08-24")
    meta = assert_safe(study_html(study_view(study(1, cite)))).text
    assert "2024" in meta and "2025" not in meta


def test_a_long_question_cut_for_the_search_says_so_in_the_copied_answer():
    answer = Answer("A long story. Does pacing help?", (study(1),), True, cut="Does pacing help?")
    text = answer_text(answer_view(answer), "A long story. Does pacing help?")
    assert "only this part of it was searched: “Does pacing help?”" in text


# --- one view: every format renders the same answer ----------------------------------------------


def test_the_remote_client_renders_the_same_text_as_the_local_answer():
    from qa.present.answer import answer_to_text

    answer, highlights = _highlighted()
    view = answer_view(answer, highlights)
    data = view_to_dict(view)
    assert [set(q) for q in data["digest"]] == [{"rank", "doc_id", "section", "text"}] * 6
    assert data["digest"][0] == {
        "rank": 1,
        "doc_id": "study-1.md",
        "section": "What has been found?",
        "text": "Valacyclovir helped some patients.",
    }
    again = view_from_dict(data)
    assert again.digest == view.digest and again.studies[0].citation == view.studies[0].citation
    assert answer_to_text(again) == answer_to_text(view)
    assert "In short, quoted from the summaries:" in answer_to_text(view)
    assert answer_text(again, "Which antiviral helped?") == answer_text(view, "Which antiviral helped?")


def test_an_answer_in_another_language_uses_its_fixed_texts_everywhere():
    answer, highlights = _highlighted()
    german = answer_view(
        Answer(answer.question, answer.studies, True, language="de"),
        highlights,
    )
    html = Parsed(answer_html(german))
    assert "Kurz gesagt, zitiert aus den Zusammenfassungen" in html.text
    assert "keine medizinische Beratung" in html.text and "not medical advice" not in html.text
    text = answer_text(german, "Hilft Valacyclovir?")
    assert "Studien:" in text and "Kurz gesagt" in text
    assert "Valacyclovir helped some patients." in text  # the summaries are quoted as written
