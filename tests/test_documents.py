"""Loader tests: the seed's mojibake, the corpus's odd cases, and bad files becoming Problems."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import frontmatter
import pytest

from qa.corpus.documents import (
    Document,
    LoadResult,
    load_document,
    load_folder,
    normalise_tag,
    parse_document,
    summary_files,
)
from qa.errors import DocumentError

# Computed here: `tests` is not an importable package under pytest.
ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "summaries"
SEEDS = ROOT / "seeds"


def corpus_path(pattern: str) -> Path:
    """The one corpus file matching a glob pattern."""
    found = sorted(CORPUS.glob(pattern))
    assert len(found) == 1, f"{pattern!r} matches {len(found)} corpus files"
    return found[0]


@pytest.fixture(scope="module")
def seed() -> Document:
    files = sorted(SEEDS.glob("*.md"))
    assert len(files) == 1
    return load_document(files[0])


@pytest.fixture(scope="module")
def corpus() -> LoadResult:
    return load_folder(CORPUS)


# --- the seed file (mojibake) -------------------------------------------------------------


def test_seed_is_really_damaged_on_disk():
    raw = next(SEEDS.glob("*.md")).read_text(encoding="utf-8")
    assert "JosÃ©" in raw and "ğŸ’Š" in raw  # otherwise the repair tests below prove nothing


def test_seed_mojibake_is_repaired(seed):
    assert "José A. Espejo-Oltra" in seed.authors
    assert "Karen Giménez-Orenga" in seed.authors
    assert "Max Delbrück" in seed.institutes
    assert "Universidad Católica de Valencia" in seed.institutes
    assert "valacyclovir (VACV) 💊" in seed.body
    assert "ğŸ" not in seed.body
    assert "Ã" not in seed.body + seed.authors + seed.institutes


def test_seed_tags_are_normalised(seed):
    assert seed.tags == ("Landmark", "Treatment", "Trial")
    assert seed.added == ""  # the seed has no ➕ tag


def test_seed_citation_fields(seed):
    assert seed.doc_id == next(SEEDS.glob("*.md")).name
    assert seed.title.startswith("Advancing Research and Treatment: An Overview of Clinical Trials")
    assert seed.label == "Seton et al. (2024)"
    assert seed.year == "2024"
    assert seed.doi == "10.3390/jcm13020325"
    assert seed.link == "https://doi.org/10.3390/jcm13020325"
    assert seed.publisher == "Journal of Clinical Medicine"
    assert seed.authors.startswith("Katharine A. Seton,")
    assert seed.created == seed.published == "2024-01-06"
    citation = seed.citation
    assert citation.label == "Seton et al. (2024)"
    assert citation.url == "https://doi.org/10.3390/jcm13020325"
    assert citation.tags == seed.tags
    text = citation.as_text()
    assert text.startswith("Katharine A. Seton, José A. Espejo-Oltra")
    assert "(2024)" in text and "Journal of Clinical Medicine." in text
    assert text.endswith("https://doi.org/10.3390/jcm13020325")


def test_seed_repairs_to_the_clean_corpus_version(seed):
    clean = load_document(corpus_path("2024-01-06_Advancing_Research_and_Treatment*2b683370.md"))
    assert seed.title == clean.title
    assert seed.body == clean.body
    assert (seed.authors, seed.institutes, seed.publisher) == (
        clean.authors,
        clean.institutes,
        clean.publisher,
    )
    assert clean.tags == ("Landmark", "Treatment", "Trial")
    assert clean.added == "2025-12-25"


# --- tags ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("⭐ Landmark", ("category", "Landmark")),
        ("â Landmark", ("category", "Landmark")),  # emoji lost to mojibake
        ("ğŸ’Š Treatment", ("category", "Treatment")),
        ("â³ Trial", ("category", "Trial")),
        ("🧪 biomarker", ("category", "Biomarker")),
        ("📰 News", ("category", "News")),
        ("➕ 2025-12-25", ("added", "2025-12-25")),
        ("🆕 open access", ("category", "Open Access")),
    ],
)
def test_normalise_tag(raw, expected):
    assert normalise_tag(raw) == expected


def test_date_tag_becomes_added_not_a_tag(tmp_path):
    path = tmp_path / "a.md"
    path.write_text(
        '---\ntitle: "A study"\ntags:\n- ➕ 2025-12-25\n- 💊 Treatment\n- 💊 Treatment\n'
        "created: '2025-01-02'\npublished: '2025-01-02'\n---\n\n## Summary\n\nSome text.\n",
        encoding="utf-8",
    )
    doc = load_document(path)
    assert doc.added == "2025-12-25"
    assert doc.tags == ("Treatment",)  # no date among the tags, no duplicate


# --- corpus variants named in FORMAT.md ---------------------------------------------------


def test_nd_label_and_researcher_field():
    doc = load_document(corpus_path("2025-11-22_Project_Update_Development_of_Dextro-Naltrexone*.md"))
    assert doc.label == "Younger (n.d.)"
    assert doc.year == ""
    assert doc.authors.startswith("Jarred Younger")
    assert "University of Alabama at Birmingham" in doc.institutes  # "Institute" field
    assert doc.publisher  # "Source" field
    assert re.match(r"https://(www\.)?(youtu\.be|youtube\.com)/", doc.link)
    assert doc.doi == ""
    assert doc.citation.url == doc.link
    assert "(n.d.)" in doc.citation.as_text()


def test_colon_outside_the_bold():
    doc = load_document(corpus_path("2025-06-16_Study_on_Daratumumab*.md"))
    assert doc.authors == "Helse Bergen HF (Sponsor)"
    assert doc.institutes == "Helse Bergen HF"
    assert doc.created == "2025-06-01"
    assert doc.doi == ""
    assert doc.link.startswith("https://clinicaltrials.eu/")


@pytest.mark.parametrize(
    ("pattern", "nct", "sponsor", "year"),
    [
        ("2022-11-11_Prednisolone_and_Vitamin_B1*PreVitaCOV*.md", "NCT05638633", "Wuerzburg", "2022"),
        ("2023-06-22_Study_to_Investigate*Vericiguat*.md", "NCT05697640", "Charité", "2023"),
        ("2023-10-01_Methylprednisolone_in_Patients*.md", "NCT05986422", "Charité", "2023"),
    ],
)
def test_trial_entries_without_details(pattern, nct, sponsor, year):
    doc = load_document(corpus_path(pattern))
    assert "<details>" not in doc.body
    assert doc.link == f"https://clinicaltrials.gov/study/{nct}"
    assert doc.doi == ""
    assert doc.year == year
    assert doc.label.startswith(sponsor)
    assert doc.label.endswith(f"({year})")
    assert doc.extra.get("Trial ID") == nct
    assert "Trial" in doc.tags


def test_previtacov_title_keeps_zero_width_spaces():
    doc = load_document(corpus_path("*PreVitaCOV*.md"))
    assert (
        doc.title
        == "Prednisolone and Vitamin B1/\u200b6/\u200b12 in Patients With Post-Covid-Syndrome (PreVitaCOV)"
    )


@pytest.mark.parametrize(
    ("pattern", "doi"),
    [
        ("2023-06-08_Outpatient_treatment_of_COVID-19*.md", "10.1016/S1473-3099(23)00299-2"),
        ("2025-02-10_Targeting_the_SARS_CoV_2_reservoir_in_long_COVID.md", "10.1016/S1473-3099(24)00769-2"),
    ],
)
def test_doi_with_parentheses(pattern, doi):
    doc = load_document(corpus_path(pattern))
    assert doc.doi == doi
    assert doc.citation.url == f"https://doi.org/{doi}"


@pytest.mark.parametrize(
    ("pattern", "link"),
    [
        ("2025-10-14_Autonomic_symptom_burden*.md", "https://pubmed.ncbi.nlm.nih.gov/41118678"),
        (
            "2026-04-24_A_Window_Into_Mitochondrial_Dysfunction*.md",
            "https://www.biologicalpsychiatryjournal.com/article/S0006-3223(26)00930-3/abstract",
        ),
        ("2025-03-10_Dutch_ME_CFS_Brain_Autopsy*.md", "https://www.youtube.com/watch?v=30DkFAXHjDI"),
    ],
)
def test_non_doi_links(pattern, link):
    doc = load_document(corpus_path(pattern))
    assert doc.doi == ""
    assert doc.link == link
    assert doc.citation.url == link


def test_doi_found_inside_a_publisher_url_stops_at_the_doi():
    # The Link is a Frontiers page ".../articles/10.3389/fmed.2025.1703924/abstract". Whatever
    # DOI is taken from it must not swallow the URL path: "https://doi.org/…/abstract" is a dead link.
    doc = load_document(corpus_path("2025-12-10_Large-scale_investigation_confirms_TRPM3*.md"))
    assert (
        doc.link
        == "https://www.frontiersin.org/journals/medicine/articles/10.3389/fmed.2025.1703924/abstract"
    )
    assert doc.doi in ("", "10.3389/fmed.2025.1703924")
    assert doc.citation.url in (doc.link, "https://doi.org/10.3389/fmed.2025.1703924")


def test_doi_in_a_medrxiv_url():
    doc = load_document(corpus_path("2026-04-12_Comprehensive_Immunophenotyping*.md"))
    assert doc.doi == "10.1101/2026.04.12.26350613"


# --- the whole corpus ---------------------------------------------------------------------


def test_corpus_loads_without_problems(corpus):
    assert corpus.problems == ()
    assert len(corpus.documents) == 317
    assert len({d.doc_id for d in corpus.documents}) == 317
    assert all(d.doc_id == d.path.name for d in corpus.documents)


def test_corpus_tag_counts_match_format(corpus):
    counts = Counter(tag for d in corpus.documents for tag in d.tags)
    assert counts == {"Biomarker": 251, "Treatment": 119, "Landmark": 89, "Trial": 23, "News": 20}


def test_corpus_added_dates(corpus):
    without = [d.doc_id for d in corpus.documents if not d.added]
    assert len(without) == 1 and without[0].startswith("2025-06-19_Advancing_research_on_regulatory")
    dates = {d.added for d in corpus.documents if d.added}
    assert len(dates) == 19
    assert min(dates) == "2025-12-25" and max(dates) == "2026-05-31"


def test_corpus_category_tags_per_file(corpus):
    per_file = Counter(len(d.tags) for d in corpus.documents)
    assert per_file == {0: 1, 1: 163, 2: 124, 3: 26, 4: 2, 5: 1}
    (untagged,) = [d for d in corpus.documents if not d.tags]
    assert untagged.doc_id.startswith("2025-10-14_Autonomic_symptom_burden")


def test_corpus_labels_and_years_agree(corpus):
    for doc in corpus.documents:
        match = re.search(r"\((\d{4}|n\.d\.)\)$", doc.label)
        assert match, (doc.doc_id, doc.label)
        assert doc.year == ("" if match.group(1) == "n.d." else match.group(1)), doc.doc_id
    assert sum(d.label.endswith("(n.d.)") for d in corpus.documents) == 2


def test_corpus_every_document_has_a_link(corpus):
    for doc in corpus.documents:
        assert doc.link.startswith(("https://", "http://")), doc.doc_id
        assert doc.citation.url, doc.doc_id
        if doc.link.startswith("https://doi.org/10."):
            assert doc.doi and doc.link.endswith(doc.doi), doc.doc_id
    assert sum(d.link.startswith("https://doi.org/10.") for d in corpus.documents) == 268


def test_repair_leaves_clean_corpus_text_alone(corpus):
    # The copies are clean: repairing mojibake must not change a character of them.
    for doc in corpus.documents:
        post = frontmatter.loads(doc.path.read_text(encoding="utf-8"))
        assert doc.title == post.metadata["title"], doc.doc_id
        assert doc.body == post.content, doc.doc_id


# --- bad input ----------------------------------------------------------------------------

GOOD = (
    "---\ntitle: \"A good study\"\ntags:\n- 🧪 Biomarker\ncreated: '2024-03-01'\n"
    "published: '2024-03-01'\n---\n\n<details>\n<summary>Doe et al. (2024)</summary>\n\n"
    "- **Authors:** Jane Doe\n- **Publisher:** Some Journal\n"
    "- **Link:** [DOI](https://doi.org/10.1234/abc.5)\n\n</details>\n\n## Summary\n\nA finding.\n"
)
NO_DETAILS = (
    "---\ntitle: \"A study with no details block\"\ncreated: '2024-03-01'\n---\n\n"
    "## Summary\n\nNothing but prose here.\n"
)

BAD_FILES = {
    "empty.md": (b"", r"empty"),
    "blank.md": (b"  \n\n \n", r"empty"),
    "binary.md": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", r"binary|NUL"),
    "latin1.md": ('---\ntitle: "Jos\u00e9"\n---\n\nCaf\u00e9 text.\n'.encode("latin-1"), r"UTF-8"),
    "nofrontmatter.md": (b"# Just a heading\n\nSome text.\n", r"frontmatter"),
    "brokenyaml.md": (b'---\ntitle: "unterminated\ntags: [a, b\n---\n\nText.\n', r"YAML"),
    "unclosed.md": (b'---\ntitle: "x"\n\n## Summary\n\nText.\n', r"frontmatter"),
    "notitle.md": (b"---\ntags:\n- News\n---\n\n## Summary\n\nText.\n", r"title"),
    "nobody.md": (b'---\ntitle: "x"\n---\n\n   \n', r"no text"),
}


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    (tmp_path / "good.md").write_text(GOOD, encoding="utf-8")
    (tmp_path / "no_details.markdown").write_text(NO_DETAILS, encoding="utf-8")
    (tmp_path / "notes.txt").write_bytes(b"\x00 not a summary, ignored")
    (tmp_path / "sub.md").mkdir()  # a folder named like a summary is not a file
    for name, (data, _) in BAD_FILES.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


def test_summary_files_lists_only_summary_files(mixed_folder):
    names = [p.name for p in summary_files(mixed_folder)]
    assert names == sorted([*BAD_FILES, "good.md", "no_details.markdown"])


def test_load_folder_keeps_good_files_and_reports_bad_ones(mixed_folder):
    result = load_folder(mixed_folder)
    assert sorted(d.doc_id for d in result.documents) == ["good.md", "no_details.markdown"]
    reasons = {p.path.name: p.reason for p in result.problems}
    assert set(reasons) == {*BAD_FILES, "sub.md"}
    assert "folder" in reasons["sub.md"]  # never skipped silently
    for name, (_, pattern) in BAD_FILES.items():
        assert re.search(pattern, reasons[name], re.I), (name, reasons[name])
    for problem in result.problems:
        assert problem.path.parent == mixed_folder
        assert str(problem).startswith(str(problem.path))
        assert problem.reason in str(problem)


def test_good_file_next_to_bad_ones_is_complete(mixed_folder):
    good = next(d for d in load_folder(mixed_folder).documents if d.doc_id == "good.md")
    assert good.title == "A good study"
    assert good.label == "Doe et al. (2024)"
    assert good.authors == "Jane Doe"
    assert good.doi == "10.1234/abc.5"
    assert good.tags == ("Biomarker",)


def test_missing_details_and_doi_is_not_an_error(mixed_folder):
    doc = load_document(mixed_folder / "no_details.markdown")
    assert doc.doi == "" and doc.link == "" and doc.authors == ""
    assert doc.year == "2024"  # from `created`
    assert doc.label == "A study with no details block (2024)"
    assert doc.citation.url == ""
    text = doc.citation.as_text()
    assert text.startswith("A study with no details block")
    assert text.count("(2024)") == 1, text  # the label already carries the year


def test_citation_text_of_a_trial_entry_without_authors():
    doc = load_document(corpus_path("*PreVitaCOV*.md"))
    assert doc.authors == ""
    text = doc.citation.as_text()
    assert text.startswith("Wuerzburg University Hospital (2022) ")
    assert text.count("(2022)") == 1, text
    assert text.endswith("https://clinicaltrials.gov/study/NCT05638633")


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_parse_document_raises_naming_the_file(mixed_folder, name):
    path = mixed_folder / name
    with pytest.raises(DocumentError) as info:
        load_document(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_non_utf8_reason_gives_the_byte_offset():
    data = b'---\ntitle: "x"\n---\n\nab\xff\n'
    offset = data.index(b"\xff")
    with pytest.raises(DocumentError, match=rf"byte {offset}\b"):
        parse_document(Path("x.md"), data)


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(DocumentError, match="not a folder"):
        load_folder(tmp_path / "nope")


def test_bom_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "crlf.md"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode("utf-8"))
    doc = load_document(path)
    assert doc.title == "A good study"
    assert "\r" not in doc.body
    assert doc.doi == "10.1234/abc.5"


def test_unquoted_yaml_dates(tmp_path):
    path = tmp_path / "dates.md"
    path.write_text('---\ntitle: "T"\ncreated: 2023-05-06\n---\n\n## Summary\n\nText.\n', encoding="utf-8")
    doc = load_document(path)
    assert doc.created == doc.published == "2023-05-06"
    assert doc.year == "2023"


def test_content_hash_follows_the_bytes(tmp_path):
    a, b = tmp_path / "a.md", tmp_path / "b.md"
    a.write_text(GOOD, encoding="utf-8")
    b.write_text(GOOD.replace("A finding.", "Another finding."), encoding="utf-8")
    assert load_document(a).content_hash == parse_document(b, a.read_bytes()).content_hash
    assert load_document(a).content_hash != load_document(b).content_hash


# --- frontmatter of the wrong type (issue "Readers that never write…", point 7) ---------------


def _parse(frontmatter_yaml: str, details: str = "") -> Document:
    raw = f"---\n{frontmatter_yaml}\n---\n\n{details}## Summary\n\nSome text.\n".encode()
    return parse_document(Path("odd.md"), raw)


@pytest.mark.parametrize(
    ("yaml_text", "warning"),
    [
        ("title: A\ntags:\n  A: 1", "tags: expected a list of tags, got a mapping; ignored"),
        ("title: A\ntags: 5", "tags: expected a list of tags, got int '5'; ignored"),
        ("title: A\ntags:\n- {a: 1}\n- 💊 Treatment", "tags: expected text for each tag, got a mapping"),
        ("title: A\ncreated: [2024-01-01]", "created: expected a date (YYYY-MM-DD), got a list; ignored"),
    ],
)
def test_a_field_of_the_wrong_type_is_warned_about_not_turned_into_metadata(yaml_text, warning):
    doc = _parse(yaml_text)
    assert any(w.startswith(warning) for w in doc.warnings), doc.warnings
    assert not any(t in ("A'", "5", "{'a': 1}") for t in doc.tags) and doc.created == ""


def test_a_list_as_title_refuses_the_file_naming_the_field():
    with pytest.raises(DocumentError, match=r"title: expected text, got a list"):
        _parse("title: [a, b]")


def test_an_over_long_title_and_author_list_are_cut_with_a_warning():
    authors = ", ".join(f"Author {n}" for n in range(1500))
    details = (
        f"<details>\n<summary>Author et al. (2025)</summary>\n\n- **Authors:** {authors}\n\n</details>\n\n"
    )
    doc = _parse("title: " + "word " * 3600, details)
    assert len(doc.title) <= 1_001 and doc.title.endswith("…")
    assert len(doc.authors) <= 5_010 and doc.authors.endswith("et al.")
    assert [w.split(":")[0] for w in doc.warnings] == ["title", "authors"]


def test_no_summary_of_the_corpus_gets_a_warning():
    loaded = load_folder(CORPUS)
    assert [(d.doc_id, d.warnings) for d in loaded.documents if d.warnings] == []


def test_an_update_reports_each_warning_with_its_file(tmp_path, fake_embedder):
    from qa.index.update import update_folder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "odd.md").write_text(
        "---\ntitle: A study\ntags: 5\n---\n\n## Summary\n\nSome text.\n", encoding="utf-8"
    )
    index, report = update_folder(tmp_path / "index", docs, fake_embedder)
    assert report.warnings == [f"{docs / 'odd.md'}: tags: expected a list of tags, got int '5'; ignored"]
    assert "odd.md" in index.documents and report.added == ["odd.md"]


def test_a_summary_moved_into_a_subfolder_is_named_as_moved_not_just_removed(tmp_path, fake_embedder):
    from qa.index.update import update_folder
    from tests.conftest import write_summary

    docs = tmp_path / "docs"
    docs.mkdir()
    write_summary(docs, "a.md", "Pacing", "Pacing helped.")
    write_summary(docs, "b.md", "Tilt", "Blood flow fell.")
    update_folder(tmp_path / "index", docs, fake_embedder)
    (docs / "archive").mkdir()
    (docs / "a.md").rename(docs / "archive" / "a.md")
    _, report = update_folder(tmp_path / "index", docs, fake_embedder)
    assert report.removed == ["a.md"] and report.moved == ["a.md → archive/a.md"]
    assert "moved into a subfolder, which is not read: a.md → archive/a.md" in report.summary()
