"""Citation export (plain text, BibTeX, RIS) on citations of real corpus summaries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qa.corpus.citations import to_bibtex, to_ris, to_text
from qa.corpus.documents import Citation, load_document, load_folder

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "summaries"
SEEDS = ROOT / "seeds"

FILES = {
    # DOI, accented author names repaired from mojibake
    "seton": "SEED",
    # DOI and link with "_" in them; the author list ends with a full stop
    "stovall": "2022-05-15_Acute_Effect_of_Pyridostigmine*",
    # no authors, no DOI: a trial registry entry
    "wuerzburg": "2022-11-11_Prednisolone_and_Vitamin_B1*",
    # the last two authors joined with "&"
    "che": "2025-09-03_Heightened_innate_immunity*",
    # "&" in the title, no DOI
    "action": "2026-05-11_Major_funding_secured_for_Sequence_ME*",
    # "_" in the title
    "weipert": "2025-08-19_Randomized_adaptive_assessment*",
    # a publisher (European Commission) but no DOI: a @misc entry
    "carding": "2024-11-20_7_5_million_funding*",
}


def _load(pattern: str) -> Citation:
    if pattern == "SEED":
        return load_document(next(SEEDS.glob("*.md"))).citation
    found = sorted(CORPUS.glob(pattern))
    assert len(found) == 1, f"{pattern!r} matches {len(found)} corpus files"
    return load_document(found[0]).citation


@pytest.fixture(scope="module")
def cites() -> dict[str, Citation]:
    return {name: _load(pattern) for name, pattern in FILES.items()}


@pytest.fixture(scope="module")
def corpus_citations() -> list[Citation]:
    return [d.citation for d in load_folder(CORPUS).documents]


# --- a small BibTeX reader: enough structure to catch broken output ---------------------------


def _braced(text: str, start: int) -> int:
    """Index just past the "}" closing the "{" at `start`; BibTeX counts every brace, escaped or not."""
    assert text[start] == "{"
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    raise AssertionError(f"unbalanced braces from offset {start}: {text[start : start + 80]!r}")


def parse_bibtex(text: str) -> list[tuple[str, str, dict[str, str]]]:
    """(type, key, fields) of each entry; fails on anything that is not well-formed."""
    entries, at = [], 0
    while (at := text.find("@", at)) >= 0:
        head = re.compile(r"@(\w+)\{").match(text, at)
        assert head, f"bad entry head: {text[at : at + 60]!r}"
        end = _braced(text, head.end() - 1)
        body = text[head.end() : end - 1]
        key, _, rest = body.partition(",")
        assert re.fullmatch(r"[^\s,{}]+", key), f"bad key {key!r}"
        fields, pos = {}, 0
        while rest[pos:].strip():
            field = re.compile(r"\s*(\w+) = (?=\{)").match(rest, pos)
            assert field, f"bad field in {key}: {rest[pos : pos + 60]!r}"
            close = _braced(rest, field.end())
            assert field.group(1) not in fields, f"{field.group(1)} twice in {key}"
            fields[field.group(1)] = rest[field.end() + 1 : close - 1]
            pos = close + 1 if rest[close : close + 1] == "," else close
        assert text[end : end + 2] in ("\n", "\n\n", "") or text[end:].startswith("\n\n@")
        entries.append((head.group(1), key, fields))
        at = end
    return entries


def _unescaped_specials(value: str) -> list[str]:
    return re.findall(r"(?<!\\)[&%$#_]", value)


def _bib_unescape(value: str) -> str:
    return re.sub(r"\\([{}%&$#_])", r"\1", value)


# --- plain text --------------------------------------------------------------------------------


def test_text_is_one_numbered_citation_a_line(cites):
    order = [cites["seton"], cites["wuerzburg"], cites["che"]]
    lines = to_text(order).split("\n")
    assert len(lines) == 3
    assert lines[0] == (
        "1. Katharine A. Seton, José A. Espejo-Oltra, Karen Giménez-Orenga, Rik Haagmans, "
        "Donia J. Ramadan, Jesper Mehlsen (2024) Advancing Research and Treatment: An Overview of "
        "Clinical Trials in Myalgic Encephalomyelitis/Chronic Fatigue Syndrome (ME/CFS) and Future "
        "Perspectives. Journal of Clinical Medicine. https://doi.org/10.3390/jcm13020325"
    )
    # Without authors the study's label stands in; the registry link is kept.
    assert lines[1].startswith("2. Wuerzburg University Hospital (2022) Prednisolone")
    assert lines[1].endswith("https://clinicaltrials.gov/study/NCT05638633")
    assert lines[2].startswith("3. Xiaoyu Che, ") and "(2025)" in lines[2]
    assert to_text([]) == ""


# --- BibTeX ------------------------------------------------------------------------------------


def test_bibtex_parses_with_unique_keys_and_doi_fields(cites):
    order = list(cites.values())
    entries = parse_bibtex(to_bibtex(order))
    assert len(entries) == len(order)
    keys = [key for _, key, _ in entries]
    assert len(set(keys)) == len(keys)
    for citation, (kind, key, fields) in zip(order, entries):
        assert kind in ("article", "misc")
        assert re.fullmatch(r"[A-Za-z0-9]+", key), key
        assert _bib_unescape(fields["title"]) == citation.title
        assert fields["year"] == citation.year
        if citation.doi:
            assert "doi" in fields and kind == "article"
        else:
            assert "doi" not in fields
    kind, key, fields = entries[0]
    assert (kind, key) == ("article", "Seton2024")
    assert fields["doi"] == "10.3390/jcm13020325"
    assert fields["url"] == "https://doi.org/10.3390/jcm13020325"
    assert fields["journal"] == "Journal of Clinical Medicine"
    assert fields["author"].split(" and ")[:2] == ["Katharine A. Seton", "José A. Espejo-Oltra"]


def test_bibtex_of_the_whole_corpus_parses_with_unique_keys(corpus_citations):
    entries = parse_bibtex(to_bibtex(corpus_citations))
    assert len(entries) == len(corpus_citations)
    keys = [key for _, key, _ in entries]
    assert len(set(keys)) == len(keys)


def test_bibtex_keys_stay_unique_for_the_same_author_and_year(cites):
    seton = cites["seton"]
    keys = [key for _, key, _ in parse_bibtex(to_bibtex([seton, seton, seton]))]
    assert keys == ["Seton2024", "Seton2024b", "Seton2024c"]
    # Keys do not leak from one export into the next.
    assert parse_bibtex(to_bibtex([seton]))[0][1] == "Seton2024"


def test_bibtex_escapes_special_characters_in_text_fields(cites):
    entries = {key: fields for _, key, fields in parse_bibtex(to_bibtex(list(cites.values())))}
    action = next(f for k, f in entries.items() if "Sequence ME" in f["title"])
    assert action["title"] == "Major funding secured for Sequence ME \\& Long Covid, a DecodeMe project"
    weipert = next(f for f in entries.values() if "RAPID" in f["title"])
    assert "RAPID\\_REVIVE" in weipert["title"]
    for fields in entries.values():
        for name in ("title", "author", "journal", "howpublished"):
            assert not _unescaped_specials(fields.get(name, "")), (name, fields.get(name))


def test_bibtex_escapes_hand_made_specials():
    citation = Citation(
        label="Doe (2024)",
        title="50% of {patients} improved: $100 #1 trial_name & more",
        authors="Jane Doe",
        year="2024",
        publisher="J. Odd & Co",
        doi="10.1000/xyz",
    )
    ((_, _, fields),) = parse_bibtex(to_bibtex([citation]))
    assert fields["title"] == r"50\% of \{patients\} improved: \$100 \#1 trial\_name \& more"
    assert fields["journal"] == r"J. Odd \& Co"


def test_bibtex_keeps_doi_and_url_verbatim(cites):
    """doi and url are verbatim fields (biblatex, hyperref's \\url, Zotero): no TeX escapes."""
    stovall = cites["stovall"]
    assert "_" in stovall.doi
    ((_, _, fields),) = parse_bibtex(to_bibtex([stovall]))
    assert fields["doi"] == stovall.doi
    assert fields["url"] == stovall.url


def test_bibtex_splits_authors_joined_with_ampersand(cites):
    ((_, _, fields),) = parse_bibtex(to_bibtex([cites["che"]]))
    authors = fields["author"].split(" and ")
    assert len(authors) == 19
    assert [a.rstrip(".") for a in authors[-2:]] == ["Anthony L. Komaroff", "W. Ian Lipkin"]


def test_author_names_do_not_keep_the_list_s_final_full_stop(cites):
    ((_, _, fields),) = parse_bibtex(to_bibtex([cites["stovall"]]))
    assert fields["author"].split(" and ")[-1] == "D. M. Systrom"


def test_bibtex_key_of_a_study_without_authors_is_a_name_and_a_year(cites):
    ((_, key, _),) = parse_bibtex(to_bibtex([cites["wuerzburg"]]))
    assert re.fullmatch(r"[A-Za-z]+2022", key), key


def test_misc_entries_keep_the_publisher_in_a_misc_field(cites):
    """@misc has no journal: standard styles drop it, so the publisher must go elsewhere."""
    ((kind, _, fields),) = parse_bibtex(to_bibtex([cites["carding"]]))
    assert kind == "misc"
    assert "journal" not in fields
    assert any("European Commission" in v for k, v in fields.items() if k != "title")


# --- RIS ---------------------------------------------------------------------------------------


def _ris_records(text: str) -> list[list[tuple[str, str]]]:
    records, current = [], None
    for line in text.split("\n"):
        if not line:
            continue
        match = re.fullmatch(r"([A-Z][A-Z0-9])  - ?(.*)", line)
        assert match, f"not a RIS line: {line!r}"
        tag, value = match.groups()
        if tag == "TY":
            assert current is None, "TY before the previous record's ER"
            current = [(tag, value)]
        else:
            assert current is not None, f"{tag} outside a record"
            current.append((tag, value))
            if tag == "ER":
                records.append(current)
                current = None
    assert current is None, "last record has no ER"
    return records


def test_ris_has_one_record_per_citation_with_authors(cites):
    order = list(cites.values())
    records = _ris_records(to_ris(order))
    assert len(records) == len(order)
    for citation, record in zip(order, records):
        tags = dict(record)
        assert record[0][0] == "TY" and record[-1] == ("ER", "")
        assert tags["TY"] == ("JOUR" if citation.doi else "GEN")
        assert tags["TI"] == citation.title
        assert tags.get("PY") == (citation.year or None)
        assert tags.get("DO") == (citation.doi or None)
        assert tags.get("UR") == (citation.url or None)
        assert [v for t, v in record if t == "KW"] == list(citation.tags)
        authors = [v for t, v in record if t == "AU"]
        assert bool(authors) == bool(citation.authors)
    seton = [v for t, v in records[0] if t == "AU"]
    assert seton[0] == "Katharine A. Seton" and len(seton) == 6
    assert dict(records[0])["JO"] == "Journal of Clinical Medicine"


def test_ris_of_the_whole_corpus_is_well_formed(corpus_citations):
    records = _ris_records(to_ris(corpus_citations))
    assert len(records) == len(corpus_citations)
    assert all(any(t == "TI" and v for t, v in r) for r in records)


def test_ris_splits_authors_joined_with_ampersand(cites):
    (record,) = _ris_records(to_ris([cites["che"]]))
    authors = [v for t, v in record if t == "AU"]
    assert not [a for a in authors if "&" in a]
    assert authors[-1].rstrip(".") == "W. Ian Lipkin"
