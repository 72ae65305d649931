"""bench/: a row prints a ratio only after its agreement check passed, and the checks measure what
they say (padding ignored, bounds from issue 12). Tiny tensors; the benchmarks themselves are not run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import FP32_TOL, MIN_COSINE, MIN_TOP1, Check, Row, format_table, fp32_check, lowp_check, top1_check  # noqa: E402


def test_bounds_are_the_issues() -> None:
    assert (FP32_TOL, MIN_COSINE, MIN_TOP1) == (1e-4, 0.99, 0.97)


def test_fp32_check_ignores_padding_but_not_real_tokens() -> None:
    ref = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    got = ref.clone()
    got[1, 3:] += 5.0  # padding rows may differ freely
    assert fp32_check("x", got, ref, mask).passed
    got[1, 2, 0] += 2 * FP32_TOL
    check = fp32_check("x", got, ref, mask)
    assert not check.passed and "2.0e-04" in check.text


def test_lowp_check_is_per_token_cosine() -> None:
    ref = torch.randn(1, 4, 16)
    noisy = ref + 0.01 * torch.randn_like(ref)
    assert lowp_check("bf16", noisy, ref).passed
    bad = ref.clone()
    bad[0, 3] = -bad[0, 3]  # one token pointing the other way fails the whole row
    assert not lowp_check("bf16", bad, ref).passed


def test_top1_check_threshold() -> None:
    assert top1_check("int8", 0.97).passed and not top1_check("int8", 0.969).passed


@pytest.mark.parametrize("passed,expect", [(True, "| 2.00x |"), (False, "| FAILED |")])
def test_failed_row_prints_failed_instead_of_a_ratio(passed: bool, expect: str) -> None:
    check = Check.all(Check("a ok", True), Check("b", passed))
    row = Row("fp32: albertkit fp32 vs transformers fp32", "ms", 10.0, 20.0, check=check)
    table = format_table([row])
    assert expect in table
    assert ("FAILED: a ok; b" in table) != passed
    assert Row("x", "tok/s", 30.0, 10.0, higher_is_better=True).ratio == 3.0


def test_targets_table_reads_each_target_from_its_row(tmp_path, monkeypatch) -> None:
    """run_all's targets table takes each ratio from the row it names (FAILED stays FAILED, a missing row is
    "not measured"), parses the pretraining subprocess's printed table, and --write replaces only this
    CPU's section of RESULTS.md."""
    import bench.run_all as run_all

    ok = Check("ok", True)
    forward = [
        Row("[8x128] fp32: albertkit fp32 vs ORT fp32 (transformers export + ORT transformer optimizer)", "ms", 10.0, 11.0, check=ok),
        Row("[32x128] fp32: albertkit fp32 vs ORT fp32 (transformers export + ORT transformer optimizer)", "ms", 10.0, 9.0, check=ok),
        Row("[8x128] int8 target: best albertkit int8 (onnx-int8) vs best ORT int8 (ort int8)", "ms", 10.0, 20.0,
            check=Check("cos", False)),
    ]
    pretrain = format_table([Row("32x128 same work: MLM logits at all positions both sides: tokens/s", "tok/s", 140.0, 100.0, True)])
    table = run_all.targets_table(forward, [], pretrain)
    lines = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()}
    assert "1.10x / 0.90x / not measured | **missed" in lines["fp32 >= 1.0x ORT fp32 at 8x128 / 32x128 / padded real"]
    assert "FAILED / not measured | **missed" in lines["int8 (best albertkit int8) >= 1.0x best ORT int8 at 8x128 / 32x128"]
    assert "| 1.40x | met |" in lines["training 32x128 same work >= 1.3x tokens/s"]

    results = tmp_path / "bench" / "RESULTS.md"
    results.parent.mkdir()
    results.write_text("# Benchmark results\n\nolder notes\n")
    monkeypatch.setattr(run_all, "REPO", tmp_path)
    run_all.write_results("first", "CPU A")
    run_all.write_results("other", "CPU B")
    run_all.write_results("second", "CPU A")
    text = results.read_text()
    assert "second" in text and "first" not in text and "other" in text and text.endswith("older notes\n")
