"""``albertkit bias`` from the command line: the files it writes, and one-line errors for bad input."""

from __future__ import annotations

import csv
import json

import pytest

from test_pipelines_common import hf_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, spiece_path):
    return hf_checkpoint(tmp_path_factory.mktemp("bias_cli"), spiece_path, "ForMaskedLM", seed=3)


def test_bias_cli_writes_scores_and_summary(checkpoint, shared_data, tmp_path, capsys):
    from albertkit.cli import main
    from albertkit.model_card.crows_pairs import OUTPUT_COLUMNS

    scores, summary = tmp_path / "scores.csv", tmp_path / "bias.json"
    data = shared_data / "bias" / "crows_pairs_anonymized.csv"
    argv = ["bias", str(checkpoint), "--crows-pairs", str(data), "--limit", "4", "--top-k", "3",
            "--pair", "he", "she", "--output", str(scores), "--summary", str(summary)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "CrowS-Pairs: 4 pairs" in out and "Caveat: Blodgett et al. (2021)" in out and "CC BY-SA 4.0" in out
    result = json.loads(summary.read_text())
    assert result["command"] == (f"albertkit bias {checkpoint} --pair he she --top-k 3 --crows-pairs {data} --limit 4 "
                                 f"--output {scores} --summary {summary}")
    assert result["probe"]["pairs"] == [["he", "she"]] and result["probe"]["top_k"] == 3
    crows = result["crows_pairs"]
    assert crows["pairs"] == 4 and crows["limit"] == 4 and crows["file_name"] == "crows_pairs_anonymized.csv"
    assert len(crows["sha256"]) == 64 and "caveat" in crows and "attribution" in crows
    with open(scores, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[1:] == list(OUTPUT_COLUMNS) and len(rows) == 4
    assert crows["metric_score"] == round(sum(int(r["score"]) for r in rows) / 4 * 100, 2)


@pytest.mark.parametrize(
    "content, message",
    [
        (",sent_more,sent_less,stereo_antistereo\n0,a,b,stereo\n", "line 1: missing column(s) bias_type"),
        ("sent_more,sent_less,bias_type\n", "line 1: missing column(s) stereo_antistereo"),
        ("sent_more,sent_less,stereo_antistereo,bias_type\na b,c b,stereo,gender\na b,c b,stereo,\n", "line 3: column bias_type is empty"),
    ],
)
def test_bias_cli_names_the_bad_column_and_line(checkpoint, tmp_path, capsys, content, message):
    from albertkit.cli import main

    bad = tmp_path / "bad.csv"
    bad.write_text(content, encoding="utf-8")
    assert main(["bias", str(checkpoint), "--crows-pairs", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("albertkit bias: error: ") and f"bad.csv, {message}" in err[0]


def test_bias_cli_other_bad_input(checkpoint, tmp_path, capsys):
    from albertkit.cli import main

    assert main(["bias", str(checkpoint), "--output", str(tmp_path / "x.csv")]) == 2
    assert "give --crows-pairs FILE too" in capsys.readouterr().err
    templates = tmp_path / "templates.txt"
    templates.write_text("{person} is a [MASK].\nno placeholder [MASK].\n", encoding="utf-8")
    assert main(["bias", str(checkpoint), "--templates", str(templates)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "templates.txt, line 2: a template needs {person} exactly once" in err[0]
    assert main(["bias", str(checkpoint), "--crows-pairs", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err


def test_bias_cli_fast_path_is_recorded(checkpoint, shared_data, tmp_path, capsys):
    from albertkit.cli import main

    summary = tmp_path / "bias.json"
    data = shared_data / "bias" / "crows_pairs_anonymized.csv"
    assert main(["bias", str(checkpoint), "--crows-pairs", str(data), "--limit", "2", "--fast", "bf16", "--summary", str(summary)]) == 0
    assert json.loads(summary.read_text())["crows_pairs"]["precision"] == "bf16"
