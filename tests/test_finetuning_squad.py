"""SQuAD n-best decoding on hand-built windows, the v2 null decision, and prediction writers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from albertkit.finetuning.readers import SquadAnswer, SquadExample, read_glue
from albertkit.finetuning.squad import apply_null_threshold, postprocess_squad, write_squad_predictions
from albertkit.finetuning.writers import write_glue_predictions

CONTEXT = "Denver Broncos beat the Carolina Panthers in Santa Clara."
# piece offsets of a toy tokenisation of CONTEXT (words), laid out after [CLS] q [SEP]
WORDS = [(0, 6), (7, 14), (15, 19), (20, 23), (24, 32), (33, 41), (42, 44), (45, 50), (51, 57)]


def _feature(qid, words):
    # [CLS] question [SEP] words... [SEP]: None outside the context
    return {"example_id": qid, "offset_mapping": [None, None, None] + list(words) + [None]}


def _logits(n, hot):
    row = np.full(n, -5.0)
    for i, v in hot.items():
        row[i] = v
    return row


def test_best_span_across_windows_and_max_answer_length():
    ex = SquadExample("q", "Who won?", CONTEXT, [SquadAnswer("Denver Broncos", 0)])
    w1, w2 = _feature("q", WORDS[:6]), _feature("q", WORDS[4:])
    n1, n2 = len(w1["offset_mapping"]), len(w2["offset_mapping"])
    # window 1 favours "Denver Broncos" (3 + 3); window 2 "Santa Clara" (2 + 2.5)
    start = [_logits(n1, {3: 3.0}), _logits(n2, {3 + 3: 2.0})]
    end = [_logits(n1, {4: 3.0}), _logits(n2, {3 + 4: 2.5})]
    out = postprocess_squad([ex], [w1, w2], start, end)
    assert out.predictions["q"] == "Denver Broncos"
    assert [c["text"] for c in out.nbest["q"][:2]] == ["Denver Broncos", "Santa Clara."]
    assert sum(c["probability"] for c in out.nbest["q"]) == pytest.approx(1.0)
    # spans longer than max_answer_length pieces are never proposed
    start = [_logits(n1, {3: 3.0}), _logits(n2, {})]
    end = [_logits(n1, {8: 3.0}), _logits(n2, {})]
    out = postprocess_squad([ex], [w1, w2], start, end, max_answer_length=3)
    assert len(out.predictions["q"].split()) <= 3
    # an end before the start, or a span in the question, is not an answer
    start = [_logits(n1, {1: 9.0, 5: 3.0}), _logits(n2, {})]
    end = [_logits(n1, {2: 9.0, 4: 4.0, 5: 1.0}), _logits(n2, {})]
    assert postprocess_squad([ex], [w1, w2], start, end).predictions["q"] == "beat"


def test_v2_null_threshold_and_reapply():
    ex = SquadExample("q", "Who lost?", CONTEXT, [], is_impossible=True)
    f = _feature("q", WORDS)
    n = len(f["offset_mapping"])
    start, end = [_logits(n, {0: 2.0, 3: 1.5})], [_logits(n, {0: 2.0, 4: 1.5})]
    out = postprocess_squad([ex], [f], start, end, version_2=True, null_threshold=0.0)
    # null 4.0 vs best span 3.0: diff 1.0 > 0 -> no answer
    assert out.predictions["q"] == "" and out.null_score_diff["q"] == pytest.approx(1.0)
    assert out.best_spans["q"] == "Denver Broncos"
    assert apply_null_threshold(out, 1.5).predictions["q"] == "Denver Broncos"
    with pytest.raises(ValueError, match="no null scores"):
        apply_null_threshold(postprocess_squad([ex], [f], start, end), 0.0)
    with pytest.raises(ValueError, match="has no features"):
        postprocess_squad([SquadExample("other", "?", CONTEXT)], [f], start, end)


def test_write_squad_predictions(tmp_path):
    path = tmp_path / "out" / "predictions.json"
    write_squad_predictions(path, {"56be4db0acb8001400a502ec": "Denver Broncos", "x": ""})
    assert json.loads(path.read_text()) == {"56be4db0acb8001400a502ec": "Denver Broncos", "x": ""}
    assert [p.name for p in path.parent.iterdir()] == ["predictions.json"]  # no temp file left behind


def test_write_glue_predictions(tmp_path, shared_data):
    write_glue_predictions(tmp_path / "RTE.tsv", "rte", [0, 1, "entailment"])
    assert (tmp_path / "RTE.tsv").read_text() == "index\tprediction\n0\tentailment\n1\tnot_entailment\n2\tentailment\n"
    write_glue_predictions(tmp_path / "STS-B.tsv", "stsb", [5.2, 2.34567, -1.0], ids=[7, 8, 9])
    assert (tmp_path / "STS-B.tsv").read_text().splitlines()[1:] == ["7\t5.000", "8\t2.346", "9\t0.000"]
    with pytest.raises(ValueError, match="prediction id 3 out of range"):
        write_glue_predictions(tmp_path / "x.tsv", "rte", [3])
    with pytest.raises(ValueError, match="2 ids but 1 predictions"):
        write_glue_predictions(tmp_path / "x.tsv", "rte", [1], ids=[1, 2])
    # MNLI label names round-trip through the reader's label set
    write_glue_predictions(tmp_path / "MNLI-m.tsv", "mnli", [0, 1, 2])
    assert (tmp_path / "MNLI-m.tsv").read_text().split()[3::2] == ["contradiction", "entailment", "neutral"]
