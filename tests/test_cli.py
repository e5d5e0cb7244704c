"""The `qa` command: index, ask, errors and help."""

from __future__ import annotations

import json
import shutil

import pytest

from qa.serve.cli import build_parser, main
from tests.conftest import CORPUS, SEEDS


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for command in ("index", "ask", "serve"):
        assert command in out


def test_ask_without_an_index_says_how_to_build_one(tmp_path, capsys):
    code = main(["ask", "anything", "--index", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 2 and "qa index" in err and "Traceback" not in err


@pytest.mark.slow
def test_index_then_ask(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(next(SEEDS.glob("*.md")), docs / "seed.md")
    source = next(CORPUS.glob("2025-09-23_Relationships_Between_Fatigue*"))
    shutil.copy(source, docs / source.name)
    (docs / "broken.md").write_text("no frontmatter here")
    index = str(tmp_path / "idx")

    assert main(["index", "--docs", str(docs), "--index", index, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "2 added, 0 changed, 0 removed, 0 unchanged" in captured.out
    assert "broken.md" in captured.err and "frontmatter" in captured.err

    assert main(["index", "--docs", str(docs), "--index", index, "--quiet"]) == 0
    assert "0 added, 0 changed, 0 removed, 2 unchanged; 0 passages embedded" in capsys.readouterr().out

    assert main(["ask", "Which antivirals were tried?", "--index", index, "-k", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["studies"][0]["citation"]["label"] == "Seton et al. (2024)"
    assert data["studies"][0]["citation"]["url"] == "https://doi.org/10.3390/jcm13020325"
    assert len(data["studies"]) == 2

    assert main(["ask", "Which antivirals were tried?", "--index", index, "-k", "1"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    studies = [line for line in lines if line[:1].isdigit()]
    assert studies[0].startswith("1. Seton et al. (2024)") and "not medical advice" in text
    if lines[0].startswith("In short"):  # the digest, as in the chat, comes before the studies
        assert lines[1].startswith("- “")


@pytest.mark.slow
def test_commands_without_docs_keep_to_the_folder_the_index_was_built_from(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    for source in sorted(CORPUS.glob("*.md"))[:2]:
        shutil.copy(source, docs / source.name)
    questions = tmp_path / "questions.jsonl"
    relevant = {sorted(CORPUS.glob("*.md"))[0].name: 2}
    questions.write_text(json.dumps({"id": "q1", "question": "fatigue", "relevant": relevant}) + "\n")
    index = tmp_path / "idx"
    assert main(["index", "--docs", str(docs), "--index", str(index), "--quiet"]) == 0
    capsys.readouterr()

    # `qa eval` with --index only (the default --docs would have been seeds/) keeps both.
    assert main(["eval", "--questions", str(questions), "--index", str(index), "--quiet", "--json"]) == 0
    err = capsys.readouterr().err
    assert f"reading summaries from {docs.resolve()}" in err
    assert len(json.loads((index / "manifest.json").read_text())["documents"]) == 2

    # Another folder is refused, naming both and what would be lost.
    assert main(["index", "--docs", str(SEEDS), "--index", str(index), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(docs.resolve()) in err and str(SEEDS.resolve()) in err and "remove 2 of its 2" in err
    assert "Traceback" not in err
    assert len(json.loads((index / "manifest.json").read_text())["documents"]) == 2

    # --rebuild still switches, and the index then follows the new folder.
    assert main(["index", "--docs", str(SEEDS), "--index", str(index), "--rebuild", "--quiet"]) == 0
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["docs"] == str(SEEDS.resolve()) and len(manifest["documents"]) == 1


def test_index_writes_a_small_change_as_a_delta_and_compact_folds_it(tmp_path, capsys):
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    for path in sorted(CORPUS.glob("*.md"))[:40]:
        shutil.copy(path, docs)
    args = ["--docs", str(docs), "--index", str(index), "--quiet"]
    assert main(["index", *args]) == 0
    changed = sorted(docs.glob("*.md"))[3]
    changed.write_text(changed.read_text(encoding="utf-8") + "\nA sentence about zorblatine.\n", "utf-8")
    assert main(["index", *args]) == 0
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["deltas"], "one changed summary of forty should be written as a delta"
    assert main(["index", *args, "--compact"]) == 0
    manifest = json.loads((index / "manifest.json").read_text())
    assert not manifest.get("deltas") and manifest["base"] == manifest["generation"]
    capsys.readouterr()
    assert main(["ask", "zorblatine", "--index", str(index), "--local", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["studies"][0]["doc_id"] == changed.name


@pytest.mark.slow
def test_an_update_with_few_changes_never_loads_torch(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    docs = tmp_path / "docs"
    docs.mkdir()
    source = next(CORPUS.glob("2025-09-23_Relationships_Between_Fatigue*"))
    shutil.copy(source, docs / source.name)
    index = str(tmp_path / "idx")
    assert main(["index", "--docs", str(docs), "--index", index, "--quiet"]) == 0  # a first build: torch
    shutil.copy(next(SEEDS.glob("*.md")), docs / "seed.md")
    probe = (
        "import sys; from qa.serve.cli import main; "
        f"code = main(['index', '--index', {index!r}, '--quiet']); "
        "print('TORCH', 'torch' in sys.modules, code)"
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "1 added, 0 changed, 0 removed, 1 unchanged" in run.stdout, run.stderr
    assert "TORCH False 0" in run.stdout, run.stderr
