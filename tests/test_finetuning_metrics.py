"""Metrics against scikit-learn / scipy and hand-worked cases of the official SQuAD scripts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import require_reference

stats = require_reference("scipy.stats", "Pearson/Spearman")
skm = require_reference("sklearn.metrics", "MCC / F1")

from albertkit.finetuning.metrics import (
    accuracy,
    best_null_threshold,
    f1_binary,
    glue_metrics,
    matthews_correlation,
    normalize_answer,
    pearson,
    race_accuracy,
    spearman,
    squad_exact,
    squad_f1,
    squad_v1_scores,
    squad_v2_scores,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    p = np.where(rng.random(300) < 0.7, y, 1 - y)
    assert accuracy(p, y) == pytest.approx(skm.accuracy_score(y, p))
    assert matthews_correlation(p, y) == pytest.approx(skm.matthews_corrcoef(y, p))
    assert f1_binary(p, y) == pytest.approx(skm.f1_score(y, p))


def test_matthews_multiclass_and_degenerate_match_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 200)
    p = np.where(rng.random(200) < 0.5, y, rng.integers(0, 3, 200))
    assert matthews_correlation(p, y) == pytest.approx(skm.matthews_corrcoef(y, p))
    # A constant predictor (CoLA's majority baseline) has MCC 0 in both.
    assert matthews_correlation(np.ones(10), np.r_[np.ones(5), np.zeros(5)]) == 0.0 == skm.matthews_corrcoef(np.r_[np.ones(5), np.zeros(5)], np.ones(10))
    # String labels work too (GLUE label names).
    assert matthews_correlation(["a", "b", "a"], ["a", "b", "b"]) == pytest.approx(skm.matthews_corrcoef(["a", "b", "b"], ["a", "b", "a"]))


def test_f1_no_positive_is_zero_like_sklearn():
    assert f1_binary([0, 0], [0, 0]) == 0.0
    assert skm.f1_score([0, 0], [0, 0], zero_division=0) == 0.0


def test_correlations_match_scipy_with_ties(shared_data):
    from albertkit.finetuning.readers import read_glue

    gold = np.array([ex.label for ex in read_glue("stsb", shared_data / "glue/STS-B/dev.tsv")])
    rng = np.random.default_rng(0)
    pred = np.round(gold + rng.normal(0, 1, gold.shape), 1)  # rounding makes many ties
    assert pearson(pred, gold) == pytest.approx(stats.pearsonr(pred, gold)[0], abs=1e-12)
    assert spearman(pred, gold) == pytest.approx(stats.spearmanr(pred, gold)[0], abs=1e-12)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))
    m = glue_metrics("stsb", pred, gold)
    assert set(m) == {"pearson", "spearman"}


def test_glue_metrics_keys():
    assert set(glue_metrics("cola", [1, 0], [1, 1])) == {"matthews_correlation", "accuracy"}
    assert set(glue_metrics("mrpc", [1, 0], [1, 1])) == {"f1", "accuracy"}
    assert glue_metrics("SST-2", [1, 0], [1, 1]) == {"accuracy": 0.5}
    with pytest.raises(ValueError, match="same length"):
        accuracy([1, 0], [1])


def test_normalize_answer_official_rules():
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("A.B.C.") == "abc"
    assert normalize_answer("theater") == "theater"  # articles only as whole words
    # string.punctuation is ASCII only: the en dash and inverted question mark stay.
    assert normalize_answer("1990–1995 ¿") == "1990–1995 ¿"


def test_squad_f1_hand_computed():
    # pred tokens [cat sat on mat] vs gold [cat on mat]: P = 3/4, R = 1 -> F1 = 6/7
    assert squad_f1("the cat sat on the mat", "cat on mat") == pytest.approx(6 / 7)
    assert squad_exact("The Denver Broncos.", "denver broncos") == 1.0
    # repeated tokens count by multiplicity: [a a b] vs [a b]? articles removed, use other words
    assert squad_f1("x x y", "x y") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    # the v1.1 / v2.0 difference for empty strings
    assert squad_f1("", "") == 0.0
    assert squad_f1("", "", version_2=True) == 1.0
    assert squad_f1("the", "", version_2=True) == 1.0  # "the" normalises to nothing
    assert squad_f1("Denver", "", version_2=True) == 0.0


def test_squad_v1_scores_max_over_answers_and_missing():
    gold = {"q1": ["Denver Broncos", "The Broncos"], "q2": ["1990s"], "q3": ["Paris"]}
    preds = {"q1": "the broncos", "q2": "in the 1990s"}  # q3 missing -> 0, still counted
    s = squad_v1_scores(gold, preds)
    assert s["exact_match"] == pytest.approx(100 / 3)
    # q1 F1 1, q2: [in 1990s] vs [1990s] -> 2/3, q3 0
    assert s["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert s["missing"] == 1 and s["total"] == 3


def _v2_case():
    gold = {"q1": ["Denver Broncos"], "q2": ["1990s", "the 1990s"], "q3": [], "q4": []}
    preds = {"q1": "Denver Broncos", "q2": "in 1990s", "q3": "", "q4": "something"}
    na = {"q1": 0.1, "q2": 0.6, "q3": 0.9, "q4": 0.4}
    return gold, preds, na


def test_squad_v2_breakdown_hand_computed():
    gold, preds, na = _v2_case()
    s = squad_v2_scores(gold, preds)
    assert s["exact"] == pytest.approx(50.0)
    assert s["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 0) / 4)
    assert (s["HasAns_exact"], s["HasAns_total"]) == (pytest.approx(50.0), 2)
    assert s["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert (s["NoAns_exact"], s["NoAns_f1"], s["NoAns_total"]) == (50.0, 50.0, 2)


def test_squad_v2_threshold_and_best_threshold_hand_computed():
    gold, preds, na = _v2_case()
    s = squad_v2_scores(gold, preds, na_probs=na, na_prob_threshold=0.5)
    # q2 (answerable) and q3 (unanswerable) have na > 0.5 -> treated as "no answer": 0 and 1.
    assert s["exact"] == pytest.approx(50.0) and s["f1"] == pytest.approx(50.0)
    # search: start at 2 (both unanswerables right); q1 (na .1) +1 -> 3 (best, thresh .1);
    # q4 (.4) non-empty on unanswerable -1 -> 2; q2 (.6) +0 / +2/3; q3 (.9) empty -> +0.
    assert (s["best_exact"], s["best_exact_thresh"]) == (pytest.approx(75.0), 0.1)
    assert (s["best_f1"], s["best_f1_thresh"]) == (pytest.approx(75.0), 0.1)
    # A later best: make q2 a full match so answering it is worth more than the q4 penalty.
    preds2 = dict(preds, q2="1990s")
    exact = {q: 1.0 if q != "q4" else 0.0 for q in gold}
    assert best_null_threshold(gold, preds2, exact, na) == (pytest.approx(75.0), 0.1)
    # q4 now last: q1 +1 -> 3, q2 +1 -> 4 (best, thresh .6), q3 empty +0 (not strictly better), q4 -1.
    na2 = dict(na, q4=0.95)
    assert best_null_threshold(gold, preds2, exact, na2) == (pytest.approx(100.0), 0.6)


def test_race_accuracy_per_level():
    r = race_accuracy([0, 1, 2, 3, 0], [0, 1, 0, 3, 1], ["middle", "middle", "high", "high", "high"])
    assert r["accuracy"] == pytest.approx(3 / 5)
    assert r["accuracy_middle"] == 1.0 and r["total_middle"] == 2
    assert r["accuracy_high"] == pytest.approx(1 / 3) and r["total_high"] == 3
