"""The model albertkit ships (src/albertkit/models/albert-mini-en): loadable by name, within budget,
and as good on held-out text as its model card says (a regression guard on the artifact)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import albertkit
from albertkit.hub import shipped_model_path

FOLDER = Path(albertkit.__file__).parent / "models" / "albert-mini-en"


def test_shipped_model_is_found_by_name_and_fits_16_mb() -> None:
    assert shipped_model_path("albert-mini-en") == FOLDER
    size = sum(p.stat().st_size for p in FOLDER.iterdir() if p.is_file())
    assert size < 16 * 1024 * 1024
    for name in ("config.json", "model.safetensors", "spiece.model", "tokenizer_config.json", "README.md"):
        assert (FOLDER / name).is_file(), name


def test_shipped_model_loads_in_every_class_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pre = albertkit.AlbertForPreTraining.from_pretrained("albert-mini-en")
    assert pre.num_parameters() == 2_872_306 and pre.loading_info["new_weights"] == []
    mlm = albertkit.AlbertForMaskedLM.from_pretrained("albert-mini-en")
    assert mlm.loading_info["new_weights"] == []
    tok = albertkit.AlbertTokenizer.from_pretrained("albert-mini-en")
    assert tok.encode("Hello, my dog is cute") == [2, 10975, 15, 51, 1952, 25, 10901, 3]


def test_shipped_model_held_out_metrics_match_its_card(shared_data: Path, tmp_path: Path) -> None:
    """MLM/SOP on the RACE passages (never trained on), seeded, against the recorded numbers."""
    from albertkit.cli import main

    docs = [json.loads(p.read_text())["article"].strip() for p in sorted((shared_data / "race" / "RACE").glob("*/*/*.txt"))]
    text = tmp_path / "race.txt"
    text.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    recorded = json.loads((FOLDER / "training" / "race_metrics.json").read_text())
    out = tmp_path / "metrics.json"
    assert main(["-q", "evaluate-pretraining", str(FOLDER), str(text), "--max-seq-length", "128", "--output", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["masked_tokens"] == recorded["masked_tokens"]
    assert got["masked_lm_accuracy"] == pytest.approx(recorded["masked_lm_accuracy"], abs=1e-6)
    # The card leads with accuracy at [MASK] only (issue #14): the recorded figure must be this model's.
    assert got["mask_only_tokens"] == recorded["mask_only_tokens"]
    assert got["mask_only_accuracy"] == pytest.approx(recorded["mask_only_accuracy"], abs=1e-6)
    assert got["sentence_order_accuracy"] == pytest.approx(recorded["sentence_order_accuracy"], abs=1e-6)
    assert got["masked_lm_accuracy"] > 0.10  # far above the 1/30000 of an untrained model
