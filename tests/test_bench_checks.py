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
