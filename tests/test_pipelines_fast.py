"""The fast paths (albertkit.fast) selected through pipeline(fast=...) and `--fast` on the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from test_pipelines_common import hf_checkpoint


@pytest.fixture(scope="module")
def mlm(tmp_path_factory, spiece_path):
    return hf_checkpoint(tmp_path_factory.mktemp("mlm_fast"), spiece_path, "ForMaskedLM")


SENTENCES = [
    "the capital of france is [MASK].",
    "she opened the [MASK] and walked in.",
    "we will meet again [MASK] week.",
]


@pytest.mark.parametrize("mode", ["bf16", "int8"])
def test_fill_mask_fast_path_agrees_with_fp32(mlm, mode: str) -> None:
    from albertkit import pipeline

    ref = pipeline("fill-mask", model=mlm, top_k=5)
    fast = pipeline("fill-mask", model=mlm, top_k=5, fast=mode)
    import torch

    if mode == "bf16":
        assert fast.model.dtype == torch.bfloat16
    else:  # dynamically quantized Linear layers replace the fp32 ones
        assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in fast.model.modules())
    tol = 0.05 if mode == "bf16" else 0.1
    for a, b in zip(ref(SENTENCES), fast(SENTENCES)):
        assert [x["token"] for x in a][:1] == [x["token"] for x in b][:1]
        assert abs(a[0]["score"] - b[0]["score"]) < tol


def test_unknown_fast_mode_is_a_clear_error(mlm) -> None:
    from albertkit import pipeline

    with pytest.raises(ValueError, match="fast path"):
        pipeline("fill-mask", model=mlm, fast="fp8")


def test_cli_fast_option(mlm) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "albertkit", "-q", "fill-mask", SENTENCES[0], "--model", str(mlm), "--fast", "bf16", "--top-k", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert len(result) == 2 and {"score", "token", "token_str", "sequence"} <= set(result[0])


def test_cli_fast_auto_names_its_choice(mlm, capsys, caplog, monkeypatch) -> None:
    import logging

    from albertkit.cli import main

    from albertkit.cpu import cpu_capability

    monkeypatch.setenv("ALBERTKIT_CPU_CAPABILITY", "avx2")  # a class without native bf16: auto is int8
    level = cpu_capability().level  # "default" on a CPU (or under ATEN_CPU_CAPABILITY) below AVX2
    with caplog.at_level(logging.INFO, logger="albertkit.fast"):
        assert main(["fill-mask", SENTENCES[0], "--model", str(mlm), "--fast", "auto", "--top-k", "1"]) == 0
    assert f"fast path auto -> {'fp32' if level == 'default' else 'int8'} (CPU class {level}" in caplog.text
    assert len(json.loads(capsys.readouterr().out)) == 1


CALIBRATION = [
    "the committee will meet again next week to discuss the budget.",
    "he walked to the station and waited for the train.",
    "rain fell on the city all through the night.",
]


def _smoothing(model) -> list:
    from albertkit.quantization import Int8Linear

    return [m.input_smoothing for m in model.modules() if isinstance(m, Int8Linear)]


def test_int8_calibrates_its_smoothing_on_the_given_texts(mlm) -> None:
    import torch

    from albertkit import AlbertForMaskedLM, pipeline
    from albertkit.quantization import calibration_from_texts, quantize_int8

    calibrated = pipeline("fill-mask", model=mlm, fast="int8", calibration=CALIBRATION)
    default = pipeline("fill-mask", model=mlm, fast="int8")
    batches = calibration_from_texts(calibrated.tokenizer, CALIBRATION, max_length=512, batch_size=32)
    direct = quantize_int8(AlbertForMaskedLM.from_pretrained(str(mlm)), calibration=batches)
    got, want, random_ids = _smoothing(calibrated.model), _smoothing(direct), _smoothing(default.model)
    assert len(got) == 6 and all(torch.equal(a, b) for a, b in zip(got, want))
    assert not all(torch.equal(a, b) for a, b in zip(got, random_ids))  # the texts, not random ids, set them
    ref = pipeline("fill-mask", model=mlm, top_k=1)
    assert [r[0]["token"] for r in ref(SENTENCES)] == [r[0]["token"] for r in calibrated(SENTENCES, top_k=1)]


def test_calibration_belongs_to_int8_only(mlm) -> None:
    from albertkit import pipeline
    from albertkit.quantization import calibration_from_texts

    with pytest.raises(ValueError, match="int8 path only, not 'bf16'"):
        pipeline("fill-mask", model=mlm, fast="bf16", calibration=CALIBRATION)
    tok = pipeline("fill-mask", model=mlm).tokenizer
    with pytest.raises(ValueError, match="no calibration texts"):
        calibration_from_texts(tok, [])
    with pytest.raises(ValueError, match="calibration text 1 is empty"):
        calibration_from_texts(tok, ["fine", "  "])
    with pytest.raises(TypeError, match="list of strings"):
        calibration_from_texts(tok, "one string")


def test_cli_calibration_file(mlm, tmp_path, capsys) -> None:
    from albertkit.cli import main

    texts = tmp_path / "calib.txt"
    texts.write_text("\n".join(CALIBRATION) + "\n\n", encoding="utf-8")
    assert main(["fill-mask", SENTENCES[0], "--model", str(mlm), "--fast", "int8", "--calibration", str(texts), "--top-k", "1"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    assert main(["fill-mask", SENTENCES[0], "--model", str(mlm), "--fast", "bf16", "--calibration", str(texts)]) == 2
    assert "use it with --fast int8 or auto, not bf16" in capsys.readouterr().err
    assert main(["fill-mask", SENTENCES[0], "--model", str(mlm), "--fast", "int8", "--calibration", str(tmp_path / "none.txt")]) == 2
    assert "none.txt: no such calibration file" in capsys.readouterr().err
    (tmp_path / "blank.txt").write_text("\n \n", encoding="utf-8")
    assert main(["fill-mask", SENTENCES[0], "--model", str(mlm), "--fast", "int8", "--calibration", str(tmp_path / "blank.txt")]) == 2
    assert "no calibration texts" in capsys.readouterr().err
