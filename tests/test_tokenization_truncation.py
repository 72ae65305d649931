"""Pair truncation with ``longest_first`` as Google's ``_truncate_seq_pair`` and transformers 4's slow
tokenizer do it: one token at a time from the longer sequence, from the second on a tie.

Goldens: tests/golden/truncation_slow_hf4.json, recorded from transformers 4.57.1's slow
AlbertTokenizer by tests/golden/make_truncation_golden.py (pairs of every length relation, and real
GLUE dev pairs at max_length 128 and 64).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import tokenization_parity_data as D

GOLDEN = json.loads((Path(__file__).parent / "golden" / "truncation_slow_hf4.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tok(spiece_path):
    from albertkit import AlbertTokenizer

    return AlbertTokenizer(spiece_path)


def _kept(enc) -> tuple[int, int]:
    types = enc["token_type_ids"]
    return types.count(0) - 2, types.count(1) - 1


def _google_truncate_seq_pair(a: list, b: list, max_length: int) -> None:
    """The loop of google-research/albert's run_classifier.py (the reference rule, restated)."""
    while len(a) + len(b) > max_length:
        (a if len(a) > len(b) else b).pop()


def test_golden_was_made_by_the_slow_tokenizer():
    assert GOLDEN["generator"].startswith("transformers 4.") and "slow" in GOLDEN["generator"]


def test_grid_covers_every_length_relation():
    rel = {(n1 > n2) - (n1 < n2) for n1, n2, m, k1, k2 in GOLDEN["grid"] if k1 + k2 < n1 + n2}
    assert rel == {-1, 0, 1}
    only_one = {(k1 < n1, k2 < n2) for n1, n2, m, k1, k2 in GOLDEN["grid"]}
    assert only_one == {(False, False), (True, False), (False, True), (True, True)}


def test_grid_matches_slow(tok):
    bad = []
    for n1, n2, m, k1, k2 in GOLDEN["grid"]:
        a, b = " ".join(["alpha"] * n1), " ".join(["beta"] * n2)
        got = _kept(tok(a, b, truncation="longest_first", max_length=m))
        if got != (k1, k2):
            bad.append((n1, n2, m, (k1, k2), got))
    assert not bad, bad[:10]


def test_grid_matches_googles_loop():
    for n1, n2, m, k1, k2 in GOLDEN["grid"]:
        a, b = list(range(n1)), list(range(n2))
        _google_truncate_seq_pair(a, b, m - 3)
        assert (len(a), len(b)) == (k1, k2)


def test_glue_pairs_match_slow(tok, shared_data):
    ex = D.glue_squad_examples(shared_data)
    bad, cut = [], 0
    for task, row, m, k1, k2, digest in GOLDEN["glue"]:
        a, b = ex[task][row]
        enc = tok(a, b, truncation="longest_first", max_length=m)
        cut += len(enc["input_ids"]) == m
        got = hashlib.sha1(json.dumps([enc["input_ids"], enc["token_type_ids"]], separators=(",", ":")).encode()).hexdigest()[:16]
        if got != digest:
            bad.append((task, row, m, (k1, k2), _kept(enc)))
    assert cut > 150  # many of the pairs are really cut
    assert not bad, bad[:10]


def test_truncation_true_is_longest_first(tok):
    a, b = " ".join(["alpha"] * 10), " ".join(["beta"] * 10)
    assert tok(a, b, truncation=True, max_length=18)["input_ids"] == tok(a, b, truncation="longest_first", max_length=18)["input_ids"]
    assert _kept(tok(a, b, truncation=True, max_length=18)) == (8, 7)  # the first keeps the odd token


def test_batched_pairs_truncate_like_single_pairs(tok):
    firsts = [" ".join(["alpha"] * n) for n in (3, 9, 14, 20)]
    seconds = [" ".join(["beta"] * n) for n in (20, 9, 13, 2)]
    batch = tok(firsts, seconds, truncation="longest_first", max_length=16)
    for i, (a, b) in enumerate(zip(firsts, seconds)):
        assert batch["input_ids"][i] == tok(a, b, truncation="longest_first", max_length=16)["input_ids"]
