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
