"""`cityrelay eval-classifier` on synthetic evaluation files."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from cityrelay.cli import main
from evaluation import datasets
from tests.helpers import write_shared


def summary_row(output: str, name: str) -> list[str]:
    rows = [line.split() for line in output.splitlines() if line.startswith(name + " ")]
    assert rows, output
    return rows[-1]


def test_eval_classifier_on_every_set(tmp_path: Path) -> None:
    write_shared(tmp_path)
    result = CliRunner().invoke(main, ["eval-classifier", "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = result.output
    for name in datasets.SET_NAMES:
        assert f"== {name}:" in out
    assert "not found" not in out
    assert "precision" in out and "recall" in out and "macro-F1" in out
    assert "triage at 0.45" in out
    # Synthetic Newport: three reports, each a plain example of its category.
    n, accuracy = summary_row(out, "newport")[1:3]
    assert n == "3"
    assert re.fullmatch(r"\d+\.\d%", accuracy)
    held = summary_row(out, "held-out")
    assert float(held[2].rstrip("%")) >= 85.0


def test_missing_shared_folder_falls_back_to_held_out(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["eval-classifier", "--data", str(tmp_path / "absent"), "--threshold", "0.6"]
    )
    assert result.exit_code == 0, result.output
    assert "== held-out:" in result.output
    assert "triage at 0.60" in result.output
    assert "not found under" in result.output
    assert "newport" in result.output.split("not found under")[1]


def test_one_set_and_an_unknown_set(tmp_path: Path) -> None:
    write_shared(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["eval-classifier", "--data", str(tmp_path), "--set", "teddycup"])
    assert result.exit_code == 0, result.output
    assert "== teddycup:" in result.output and "== held-out:" not in result.output
    assert "城乡建设" in result.output
    bad = runner.invoke(main, ["eval-classifier", "--set", "nope"])
    assert bad.exit_code != 0
