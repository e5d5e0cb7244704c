"""Chat HTML: document text is escaped everywhere, links are http(s) only, highlights are <mark>.

Objects are built by hand: these tests never load the model.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from qa.answer import CLOSEST, DISCLAIMER, NOT_COVERED
from qa.chunking import Chunk
from qa.documents import Citation, Document
from qa.highlight import Sentence
from qa.render import answer_html, link_html, marked_html, source_html, study_html
from qa.search import Answer, Filters, Passage, StudyHit

ALLOWED_TAGS = {"div", "span", "strong", "a", "blockquote", "mark", "p", "br", "h3", "h4", "ul", "li"}
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
        assert set(attrs) <= {"class", "href", "target", "rel", "data-rank"}, (tag, attrs)
    for attrs in parsed.all("a"):
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
    html = study_html(study(rank=2))
    parsed = assert_safe(html)
    assert parsed.all("div")[0]["class"] == "qa-study"
    assert "2. Seton et al. (2024) — Advancing Research and Treatment" in parsed.text
    assert "Journal of Clinical Medicine · 2024 · Read the paper" in parsed.text
    (link,) = parsed.all("a")
    assert link["href"] == "https://doi.org/10.3390/jcm13020325"
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
    html = study_html(hit)
    parsed = assert_safe(html)
    assert parsed.all("a") == [], "a javascript: link must not be rendered as a link"
    assert "javascript:" not in html
    for raw in (HOSTILE.label, HOSTILE.title, HOSTILE.publisher, "<b>Bold</b>", "<i>Summary</i>"):
        assert raw in parsed.text
    assert f"Before {IMG} after & {SCRIPT}." in parsed.text
    assert "Also summarised as: <dup>.md" in parsed.text


def test_study_marks_the_highlighted_sentences_of_each_passage():
    texts = ("Valacyclovir helped some patients. Others saw no change.", "Artesunate is being tested.")
    highlights = [
        [
            Sentence("Valacyclovir helped some patients.", True, 0.7),
            Sentence("Others saw no change.", False, 0.3),
        ],
        [Sentence("Artesunate is being tested.", False, 0.2)],
    ]
    html = study_html(study(texts=texts), highlights)
    assert "<mark>Valacyclovir helped some patients.</mark> Others saw no change." in html
    assert html.count("<mark>") == 1
    assert html.count('<blockquote class="qa-passage">') == 2
    # Fewer highlight lists than passages: the rest are shown plain.
    html = study_html(study(texts=texts), highlights[:1])
    assert "Artesunate is being tested." in html and html.count("<mark>") == 1


def test_study_without_any_link_shows_no_anchor():
    html = study_html(study(cite=citation(doi="", link="")))
    assert assert_safe(html).all("a") == []
    assert "Journal of Clinical Medicine · 2024" in html


@pytest.mark.parametrize("link", ["", "javascript:alert(1)"])
def test_study_without_a_usable_link_does_not_offer_to_read_the_paper(link):
    """A "Read the paper" that is plain text promises a link that is not there."""
    html = study_html(study(cite=citation(doi="", link=link)))
    assert "Read the paper" not in Parsed(html).text


# --- answer_html -------------------------------------------------------------------------------


def test_covered_answer_has_no_not_covered_note():
    answer = Answer("Has any antiviral helped?", (study(1), study(2)), True)
    html = answer_html(answer, {1: [[Sentence("Valacyclovir helped some patients.", True, 0.7)]]})
    parsed = assert_safe(html)
    assert NOT_COVERED not in parsed.text and CLOSEST not in parsed.text
    assert html.count('class="qa-study"') == 2
    assert html.count("<mark>") == 1
    assert parsed.text.rstrip().endswith(DISCLAIMER)


def test_not_covered_answer_shows_the_note_and_closest_passages():
    answer = Answer(
        "Does <b>zorblatine</b> help?", (study(1),), False, "not in any summary: <b>zorblatine</b>"
    )
    html = answer_html(answer)
    parsed = assert_safe(html)
    assert "No summary seems to answer" in parsed.text
    assert "Closest passages" in parsed.text
    assert "not in any summary: <b>zorblatine</b>" in parsed.text
    assert html.index("qa-notcovered") < html.index("qa-study")
    assert "Valacyclovir helped some patients." in parsed.text


def test_answer_without_studies_shows_the_note_only():
    html = answer_html(Answer("", (), False, "empty question"))
    parsed = assert_safe(html)
    assert "No summary seems to answer" in parsed.text and "empty question" in parsed.text
    assert "Closest passages" not in parsed.text and "qa-study" not in html


def test_answer_lists_active_filters_escaped():
    filters = Filters(("Treatment", "<b>News</b>"), "2024", "2025-99")
    html = answer_html(Answer("exercise", (study(1),), True, "", filters))
    parsed = assert_safe(html)
    assert "Filters: tags: Treatment, <b>News</b>; published 2024 to 2025-99" in parsed.text
    assert "Filters:" not in answer_html(Answer("exercise", (study(1),), True))


def test_answer_with_a_hostile_study_is_safe():
    answer = Answer("q", (study(1, cite=HOSTILE, texts=(IMG,)),), False, SCRIPT)
    html = answer_html(answer, {1: [[Sentence(IMG, True, 0.9)]]})
    parsed = assert_safe(html)
    assert parsed.all("a") == [] and "<img" not in html and "<script" not in html
    assert f"<mark>{IMG.replace('<', '&lt;').replace('>', '&gt;').replace(chr(34), '&quot;')}</mark>" in html
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
    assert "File: 2024-01-06_seed.md" in parsed.text
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
    assert f"File: {IMG}.md" in parsed.text


def test_source_without_a_link_says_so():
    parsed = assert_safe(source_html(document(link="", doi=""), [("Summary", "Text.")]))
    assert "no link given" in parsed.text and parsed.all("a") == []
