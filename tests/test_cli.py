"""The `qa` command: index, ask, errors and help."""

from __future__ import annotations

import json
import shutil

import pytest

from qa.cli import build_parser, main
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
    assert text.startswith("1. Seton et al. (2024)") and "not medical advice" in text
