"""The search's stages one at a time, and the pipeline wired to a fake embedder: no model loads."""

from __future__ import annotations

import numpy as np
import pytest

from qa.corpus.chunking import Chunk
from qa.corpus.documents import Citation
from qa.models.rerank import CROSS_ENCODER_CALIBRATION, Calibration
from qa.search.coverage import judge_coverage
from qa.search.pipeline import Searcher
from qa.search.stages import StudyGroup, fuse, group_by_study, rerank
from qa.search.types import Passage, SearchSettings, StudyHit, parse_filters


def _chunk(doc_id: str, text: str, doi: str = "", section: str = "What has been found?") -> Chunk:
    cite = Citation(label=f"{doc_id} (2025)", title=f"Study {doc_id}", doi=doi)
    return Chunk(f"{doc_id}#{section}", doc_id, section, text, text, cite)


def test_fuse_puts_what_both_lists_rank_first():
    fused = fuse([[(1, 9.0), (2, 8.0), (3, 7.0)], [(3, 0.9), (1, 0.8)]])
    assert [cid for cid, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_two_files_of_one_doi_are_one_study():
    passages = [
        Passage(_chunk("a.md", "LDN helped.", doi="10.1/X."), 0.03),
        Passage(_chunk("b.md", "Another view.", doi="10.1/x"), 0.02),
        Passage(_chunk("c.md", "Unrelated."), 0.01),
    ]
    studies = group_by_study(passages, index=None, text="LDN", whole=False)
    assert [s.files for s in studies] == [["a.md", "b.md"], ["c.md"]]


class WordReranker:
    """Scores 10 for a passage with the word, -10 without."""

    name = "word"
    calibration = CROSS_ENCODER_CALIBRATION
    verdict = None

    def __init__(self, word: str) -> None:
        self.word = word

    def score(self, question, passages):
        return np.array([10.0 if self.word in p else -10.0 for p in passages], dtype=np.float32)


def test_rerank_orders_the_read_studies_and_keeps_the_rest_below():
    studies = [
        StudyGroup(f"s{n}", [Passage(_chunk(f"{n}.md", text), 0.1 - n / 100)], [f"{n}.md"], 0.1 - n / 100)
        for n, text in enumerate(["no", "no", "pacing helped", "pacing"])
    ]
    settings = SearchSettings(rerank_studies=3)
    ranked = rerank("pacing?", studies, WordReranker("pacing"), settings)
    assert [s.key for s in ranked] == ["s2", "s0", "s1", "s3"], "s3 was not read: it stays below"
    assert ranked[0].passages[0].rerank == 10.0 and ranked[-1].passages[0].rerank is None


def _hit(rerank: float | None = None, dense: float = 0.5) -> StudyHit:
    passage = Passage(_chunk("a.md", "text"), 0.03, dense=dense, rerank=rerank)
    return StudyHit(1, "a.md", passage.chunk.citation, 0.03, (passage,))


def test_coverage_uses_the_rerankers_own_calibration():
    calibration = CROSS_ENCODER_CALIBRATION
    assert judge_coverage([_hit(-9.0)], [], calibration, "hybrid") == (
        False,
        "No passage answers this closely; the nearest ones are about something else.",
    )
    assert judge_coverage([_hit(2.0)], [], calibration, "hybrid") == (True, "")
    assert judge_coverage([_hit(2.0)], ["zorblatine"], calibration, "hybrid")[1] == (
        "No summary mentions zorblatine."
    )
    assert judge_coverage([_hit(7.0)], ["zorblatine"], calibration, "hybrid")[0], "certain enough"
    assert not judge_coverage([_hit(-1.0)], [], calibration, "hybrid", absent=["knee"])[0]
    # Another reranker with another scale brings its own thresholds.
    probability = Calibration("probability", floor=0.01, unsure=0.5, certain=0.99, answers=0.5)
    assert judge_coverage([_hit(0.3)], [], probability, "hybrid") == (True, "")
    assert not judge_coverage([_hit(0.005)], [], probability, "hybrid")[0]
    # Without a reranker, the dense floor decides.
    assert not judge_coverage([_hit(dense=0.1)], [], None, "hybrid")[0]
    assert judge_coverage([_hit(dense=0.1)], [], None, "bm25")[0]


def test_filters_read_years_as_whole_years_and_refuse_unknown_tags():
    filters = parse_filters(["Treatment"], "2024", "2024")
    assert (filters.date_from, filters.date_to) == ("2024", "2024-99")
    assert filters.allows(Citation("A (2024)", "A", tags=("Treatment",), published="2024-12-31"))
    assert not filters.allows(Citation("A (2024)", "A", tags=("Treatment",), published="2025-01-01"))
    with pytest.raises(ValueError, match="unknown tag"):
        parse_filters(["Nonsense"])


def test_the_pipeline_runs_its_stages_with_a_fake_embedder(three_studies, fake_embedder):
    index = three_studies
    searcher = Searcher(index, fake_embedder, SearchSettings(rerank="none", multilingual=False))
    answer = searcher.search("Does naltrexone ease pain?", k=2)
    assert answer.studies[0].doc_id == "ldn.md" and len(answer.studies) == 2
    assert not answer.reranked and answer.settings["rerank"] == "none"
    long = searcher.search("My story goes on and on. " * 20 + "Does pacing reduce crashes?", k=1)
    assert long.cut == "Does pacing reduce crashes?" and long.studies[0].doc_id == "pacing.md"
    assert searcher.search("🤒😴", k=2).studies == ()


def test_the_same_file_under_two_names_is_one_study_shown_once(three_studies, fake_embedder, tmp_path):
    from qa.index.update import update_folder

    docs = tmp_path / "docs"
    (docs / "ldn copy.md").write_bytes((docs / "ldn.md").read_bytes())
    index, _ = update_folder(tmp_path / "index", docs, fake_embedder)
    searcher = Searcher(index, fake_embedder, SearchSettings(rerank="none", multilingual=False))
    studies = searcher.search("Does naltrexone ease pain?", k=3).studies
    files = [s.doc_id for s in studies] + [name for s in studies for name in s.also]
    assert sorted(files).count("ldn.md") + sorted(files).count("ldn copy.md") == 2
    assert {s.doc_id for s in studies} & {"ldn.md", "ldn copy.md"} != {"ldn.md", "ldn copy.md"}


def test_the_passage_mask_allows_exactly_what_the_filters_allow():
    from qa.search.stages import PassageMask
    from qa.search.types import Filters

    def chunk(doc: str, tags: tuple[str, ...], published: str) -> Chunk:
        citation = Citation(label=doc, title=doc, tags=tags, published=published)
        return Chunk(f"{doc}#0", doc, "Summary", doc, doc, citation)

    chunks = {
        3: chunk("a.md", ("Treatment",), "2024-05-01"),
        7: chunk("b.md", ("Biomarker", "Trial"), "2023-12-31"),
        8: chunk("c.md", (), ""),
        12: chunk("d.md", ("Treatment", "News"), "2025-01"),
    }
    mask = PassageMask(chunks)
    for filters in (
        Filters(),
        Filters(tags=("Treatment",)),
        Filters(tags=("Trial", "News")),
        parse_filters([], "2024", ""),
        parse_filters([], "", "2024"),
        parse_filters(["Treatment"], "2024-06", "2025"),
        Filters(exclude=("a.md", "c.md")),
    ):
        allowed = mask.allowed(filters)
        assert len(allowed) == 13 and not allowed[[0, 1, 2, 4, 5, 6, 9, 10, 11]].any()
        for cid, c in chunks.items():
            assert allowed[cid] == (filters.allows(c.citation) and c.doc_id not in filters.exclude), (
                filters,
                cid,
            )
