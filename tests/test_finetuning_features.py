"""Featurisation with albertkit's tokenizer on real data slices, checked against the tokenizer's own
alignment (word_ids, sequence ids) and against the gold answers (SQuAD positions, oracle logits)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from albertkit.finetuning.features import (
    collate,
    encode_classification,
    encode_multiple_choice,
    encode_squad,
    encode_token_classification,
    race_pair,
)
from albertkit.finetuning.metrics import normalize_answer
from albertkit.finetuning.readers import TextExample, TokenExample, read_glue, read_race, read_squad
from albertkit.finetuning.squad import postprocess_squad, squad_gold
from albertkit.finetuning.metrics import squad_v1_scores, squad_v2_scores


@pytest.fixture(scope="module")
def tokenizer(spiece_path):
    from albertkit import AlbertTokenizer

    return AlbertTokenizer.from_pretrained(spiece_path.parent)


@pytest.fixture(scope="module")
def squad_v1(shared_data):
    examples = read_squad(shared_data / "squad/dev-v1.1.json")
    # the first 120 questions plus 30 on long contexts, which need several windows
    return examples[:120] + [e for e in examples if len(e.context) > 2000][:30]


def test_classification_pairs(shared_data, tokenizer):
    examples = read_glue("rte", shared_data / "glue/RTE/dev.tsv")[:40]
    feats = encode_classification(examples, tokenizer, label_list=("entailment", "not_entailment"), max_length=64)
    own = tokenizer([e.text_a for e in examples], [e.text_b for e in examples], truncation=True, max_length=64)
    assert [f["input_ids"] for f in feats] == own["input_ids"]
    assert [f["token_type_ids"] for f in feats] == own["token_type_ids"]
    # transformers' AlbertTokenizerFast is no id reference here: it differs from SentencePiece (and
    # albertkit) on 161 of 277 RTE premises ("44," digit-comma rule, "disease-causing").
    first_b = feats[0]["token_type_ids"].index(1)
    assert feats[0]["input_ids"][first_b - 1] == 3 and feats[0]["input_ids"][-1] == 3
    assert [f["labels"] for f in feats] == [("entailment", "not_entailment").index(e.label) for e in examples]
    assert max(len(f["input_ids"]) for f in feats) == 64  # some RTE pairs are longer: truncation happened


def test_classification_single_regression_and_known_ids(tokenizer):
    feats = encode_classification([TextExample("a", "Hello, my dog is cute", None, 3.5)], tokenizer, regression=True)
    assert feats[0]["input_ids"] == [2, 10975, 15, 51, 1952, 25, 10901, 3]  # the reference ids
    assert feats[0]["labels"] == 3.5 and feats[0]["token_type_ids"] == [0] * 8
    with pytest.raises(ValueError, match="label 'x' not in"):
        encode_classification([TextExample("a", "hi", None, "x")], tokenizer, label_list=["0", "1"])


def test_token_classification_against_own_word_ids(tokenizer):
    # Words that split into several pieces, incl. the digit-comma rule and accents.
    words = ["EU", "rejects", "92000,", "falsé", "co-operation", "ALBERT's", "(x)"]
    labels = ["B-ORG", "O", "O", "O", "O", "B-MISC", "O"]
    label_list = ["O", "B-ORG", "B-MISC"]
    feat = encode_token_classification([TokenExample("s", words, labels)], tokenizer, label_list=label_list)[0]
    enc = tokenizer(" ".join(words))
    firsts = [i for i, w in enumerate(enc.word_ids()) if w is not None and (i == 0 or enc.word_ids()[i - 1] != w)]
    assert feat["input_ids"] == enc["input_ids"]
    assert [i for i, lab in enumerate(feat["labels"]) if lab != -100] == firsts
    assert [feat["labels"][i] for i in firsts] == [label_list.index(l) for l in labels]
    assert [w for w in feat["word_ids"] if w >= 0] == list(range(len(words)))
    assert len(firsts) == len(words) and len(enc["input_ids"]) > len(words) + 4


def test_squad_windows_and_positions(tokenizer, squad_v1):
    feats = encode_squad(squad_v1, tokenizer, max_length=384, doc_stride=128)
    by_id = {e.qid: e for e in squad_v1}
    assert max(len(f["input_ids"]) for f in feats) == 384
    exact = 0
    for f in feats:
        ex = by_id[f["example_id"]]
        s, e = f["start_positions"], f["end_positions"]
        if s == 0:
            assert e == 0
            continue
        assert f["offset_mapping"][s] is not None and f["offset_mapping"][e] is not None and s <= e
        span = ex.context[f["offset_mapping"][s][0] : f["offset_mapping"][e][1]]
        assert ex.answers[0].text in span  # pieces can be wider than the answer ("2016," for "2016")
        exact += normalize_answer(span) == normalize_answer(ex.answers[0].text)
    # the rest are answers inside one piece ("gold" in "golden", "8" of "18"): "1978" for "7"
    assert exact / sum(f["start_positions"] > 0 for f in feats) > 0.95
    # A long context gets several windows whose starts are doc_stride pieces apart.
    multi = [q for q in by_id if sum(f["example_id"] == q for f in feats) > 1]
    assert multi
    windows = [f for f in feats if f["example_id"] == multi[0]]
    context = by_id[multi[0]].context
    full = tokenizer(context, return_offsets_mapping=True)["offset_mapping"][1:-1]
    starts = [next(o for o in w["offset_mapping"] if o is not None) for w in windows]
    assert [full.index(tuple(o)) for o in starts] == [128 * k for k in range(len(windows))]


def test_squad_long_question_truncated_to_max_query(tokenizer, squad_v1):
    ex = squad_v1[0]
    long_q = type(ex)(ex.qid, " ".join(["why"] * 200), ex.context, ex.answers)
    feat = encode_squad([long_q], tokenizer, max_query_length=64)[0]
    assert feat["token_type_ids"].index(1) == 1 + 64 + 1  # [CLS] 64 question pieces [SEP]


def test_squad_oracle_logits_recover_gold_v1(tokenizer, squad_v1):
    feats = encode_squad(squad_v1, tokenizer)
    T = max(len(f["input_ids"]) for f in feats)
    start = np.full((len(feats), T), -10.0)
    end = np.full((len(feats), T), -10.0)
    for i, f in enumerate(feats):
        start[i, f["start_positions"]] = 10.0
        end[i, f["end_positions"]] = 10.0
    pred = postprocess_squad(squad_v1, feats, start, end)
    scores = squad_v1_scores(squad_gold(squad_v1), pred.predictions)
    # the ceiling set by piece granularity (see above); no window or offset loss on top of it
    # (8 of these 150: "golden" for "gold", "18" for "8", "2½" for "2")
    assert scores["exact_match"] > 93 and scores["f1"] > 93
    assert pred.predictions[squad_v1[0].qid] == "Denver Broncos"


def test_squad_v2_impossible_gets_cls_and_null_answer(shared_data, tokenizer):
    examples = read_squad(shared_data / "squad/dev-v2.0.cs224n-subset.json")[:120]
    assert any(e.is_impossible for e in examples)
    feats = encode_squad(examples, tokenizer)
    by_id = {e.qid: e for e in examples}
    assert all(f["start_positions"] == 0 for f in feats if by_id[f["example_id"]].is_impossible)
    T = max(len(f["input_ids"]) for f in feats)
    start, end = np.zeros((len(feats), T)), np.zeros((len(feats), T))
    for i, f in enumerate(feats):
        start[i, f["start_positions"]] += 5.0
        end[i, f["end_positions"]] += 5.0
    pred = postprocess_squad(examples, feats, start, end, version_2=True, null_threshold=0.0)
    for e in examples:
        if e.is_impossible:
            assert pred.predictions[e.qid] == "" and pred.null_score_diff[e.qid] > 0
    s = squad_v2_scores(squad_gold(examples), pred.predictions, pred.null_score_diff)
    assert s["NoAns_exact"] == 100.0 and s["HasAns_f1"] > 95


def test_race_multiple_choice(shared_data, tokenizer):
    examples = read_race(shared_data / "race/RACE/dev/middle/34.txt")[:3]
    feats = encode_multiple_choice(examples, tokenizer, max_length=512)
    assert len(feats) == len(examples)
    f, ex = feats[0], examples[0]
    assert len(f["input_ids"]) == 4 and f["labels"] == ex.label
    for k, row in enumerate(f["input_ids"]):
        assert row[0] == 2 and row.count(3) == 2 and len(row) <= 512
        second = [t for t, ty in zip(row, f["token_type_ids"][k]) if ty == 1][:-1]
        assert second == tokenizer(race_pair(ex.question, ex.options[k]))["input_ids"][1:-1]
    assert race_pair("The boy went to _ yesterday.", "school") == "The boy went to school yesterday."
    assert race_pair("Where did he go?", "School.") == "Where did he go? School."
    batch = collate(feats[:3])
    assert batch["input_ids"].shape[:2] == (3, 4) and batch["labels"].tolist() == [e.label for e in examples[:3]]
    assert (batch["attention_mask"].sum(-1) == np.array([[len(r) for r in f["input_ids"]] for f in feats[:3]])).all()


def test_collate_pads(tokenizer):
    feats = encode_classification(
        [TextExample("a", "short", None, "1"), TextExample("b", "a somewhat longer sentence here", None, "0")],
        tokenizer, label_list=["0", "1"],
    )
    batch = collate(feats)
    n0 = len(feats[0]["input_ids"])
    assert batch["input_ids"].shape == (2, len(feats[1]["input_ids"]))
    assert batch["input_ids"][0, n0:].eq(0).all() and batch["attention_mask"][0, n0:].eq(0).all()
    assert batch["labels"].tolist() == [1, 0]
