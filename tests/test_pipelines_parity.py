"""Each albertkit pipeline against the transformers pipeline (or model) on the same random checkpoint.

Checkpoints are random-weight transformers models with the real albert-base-v2 vocabulary; inputs are
sentences from GLUE and the pretraining corpus. The default run checks a couple of dozen inputs per
task; ``-m slow`` checks 300. Scores must agree within 1e-5; tokens, labels and spans exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require_reference
from test_pipelines_common import (
    NER_LABELS,
    assert_close,
    corpus_sentences,
    hf_checkpoint,
    hf_pipeline,
    hf_tokenizer,
    mask_sentences,
)

require_reference("transformers")

FAST, SLOW = 24, 300
SIZES = [pytest.param(FAST, id="fast"), pytest.param(SLOW, id="slow", marks=pytest.mark.slow)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory, spiece_path):
    base = tmp_path_factory.mktemp("ckpt")
    labels = {"id2label": {0: "negative", 1: "neutral", 2: "positive"}}
    ner = {"id2label": dict(enumerate(NER_LABELS))}
    return {
        "mlm": hf_checkpoint(base / "mlm", spiece_path, "ForMaskedLM"),
        "base": hf_checkpoint(base / "base", spiece_path, "Model", seed=1),
        "cls": hf_checkpoint(base / "cls", spiece_path, "ForSequenceClassification", seed=2, **labels),
        "tok": hf_checkpoint(base / "tok", spiece_path, "ForTokenClassification", seed=3, **ner),
        "mc": hf_checkpoint(base / "mc", spiece_path, "ForMultipleChoice", seed=4),
    }


def _agreeing(texts: list[str], folder, n: int) -> list[str]:
    """The first ``n`` texts that albertkit's and transformers' tokenizers split alike.

    albertkit's tokenizer follows transformers' *slow* ALBERT tokenizer, transformers 5 ships only the
    fast one, and the two differ on ~40% of corpus sentences (mostly a lone "▁" before punctuation;
    see the tokenizer's tests). Pipelines are compared on identical model inputs.
    """
    from albertkit import AlbertTokenizer

    ours, ref = AlbertTokenizer.from_pretrained(folder), hf_tokenizer(folder)
    keep = [t for t in texts if list(ours(t)["input_ids"]) == list(ref(t)["input_ids"])][:n]
    assert len(keep) == n, f"only {len(keep)} of {len(texts)} texts tokenize alike"
    return keep


# ------------------------------------------------------------------------------------------ fill-mask
def _check_candidates(ours: list[dict], ref: list[dict], with_sequence: bool, what: str) -> None:
    assert [c["token"] for c in ours] == [c["token"] for c in ref], what
    assert [c["token_str"] for c in ours] == [c["token_str"] for c in ref], what
    for a, b in zip(ours, ref):
        assert set(a) == {"score", "token", "token_str", "sequence"}
        assert_close(a["score"], b["score"], what=what)
        if with_sequence:
            assert a["sequence"] == b["sequence"], what


@pytest.mark.parametrize("n", SIZES)
def test_fill_mask_matches_transformers(folders, shared_data, n):
    from albertkit import pipeline

    texts = _agreeing(mask_sentences(corpus_sentences(shared_data, 6 * n, seed=10), seed=10), folders["mlm"], n)
    ours = pipeline("fill-mask", model=folders["mlm"], batch_size=8)
    ref = hf_pipeline("fill-mask", folders["mlm"])
    got = ours(texts, top_k=4)
    assert sum(t.count("[MASK]") > 1 for t in texts) > 0  # several-mask inputs are covered
    for text, result in zip(texts, got):
        expected = ref(text, top_k=4)
        if text.count("[MASK]") == 1:
            _check_candidates(result, expected, True, text)
        else:
            assert len(result) == len(expected) == text.count("[MASK]")
            for r, e in zip(result, expected):
                # Multi-mask sequences keep [CLS]/[MASK]/[SEP]; their spacing is the tokenizer's decode
                # (test_fill_mask_multi_mask_sequence_text below).
                _check_candidates(r, e, False, text)


def test_fill_mask_targets_and_top_k(folders, caplog):
    from albertkit import pipeline

    ours = pipeline("fill-mask", model=folders["mlm"])
    ref = hf_pipeline("fill-mask", folders["mlm"])
    text = "Hello I'm a [MASK] model."
    for targets in (["▁modeling", "▁model", "▁runway"], "▁lawyer", ["modeling", "runways", "▁janitor"]):
        for k in (1, 2, 10):
            _check_candidates(ours(text, targets=targets, top_k=k), ref(text, targets=targets, top_k=k), True, str(targets))
    caplog.clear()
    with caplog.at_level("WARNING"):
        ours(text, targets=["runways"])
    assert "runways" in caplog.text and "▁runway" in caplog.text


def test_fill_mask_multi_mask_sequence_text(folders):
    from albertkit import pipeline

    text = "The [MASK] sat on the [MASK] today"
    got = pipeline("fill-mask", model=folders["mlm"])(text)
    want = hf_pipeline("fill-mask", folders["mlm"])(text)
    assert [c["sequence"] for c in got[0]] == [c["sequence"] for c in want[0]]


# ------------------------------------------------------------------------------- feature extraction
@pytest.mark.parametrize("n", SIZES)
def test_feature_extraction_matches_transformers(folders, shared_data, n):
    from albertkit import pipeline

    texts = _agreeing(corpus_sentences(shared_data, 6 * n, seed=11), folders["base"], n)
    ours = pipeline("feature-extraction", model=folders["base"], batch_size=8)
    ref = hf_pipeline("feature-extraction", folders["base"])
    for text, got in zip(texts, ours(texts)):
        want = ref(text)
        assert np.array(got).shape == np.array(want).shape  # [1, T, H]
        np.testing.assert_allclose(np.array(got), np.array(want), atol=1e-5, err_msg=text)


@pytest.fixture(scope="module")
def base_states(folders, shared_data):
    """Texts and transformers' AlbertModel last hidden states [T, H] for each (no padding): the
    reference every pooling variant below is computed from."""
    import torch
    import transformers

    texts = _agreeing(corpus_sentences(shared_data, 6 * FAST, seed=12), folders["base"], FAST)
    model = transformers.AlbertModel.from_pretrained(str(folders["base"])).eval()
    tok = hf_tokenizer(folders["base"])
    with torch.no_grad():
        states = [model(**tok(text, return_tensors="pt")).last_hidden_state[0].numpy() for text in texts]
    return texts, states


@pytest.mark.parametrize("pooling", ["cls", "mean", "max"])
@pytest.mark.parametrize("normalize", [False, True])
def test_sentence_embeddings_match_pooled_transformers_states(folders, base_states, pooling, normalize):
    from albertkit import pipeline

    texts, states = base_states
    ours = pipeline("sentence-embedding", model=folders["base"], pooling=pooling, normalize=normalize, batch_size=5)
    got = ours.encode(texts).numpy()
    for text, vec, h in zip(texts, got, states):
        # sentence-transformers' pooling definitions, written independently with numpy.
        want = {"cls": h[0], "mean": h.mean(axis=0), "max": h.max(axis=0)}[pooling]
        if normalize:
            want = want / np.linalg.norm(want)
        np.testing.assert_allclose(vec, want, atol=1e-5, err_msg=text)


# ------------------------------------------------------------------------------ text classification
@pytest.mark.parametrize("n", SIZES)
def test_text_classification_matches_transformers(folders, shared_data, n):
    from albertkit import pipeline

    texts = _agreeing(corpus_sentences(shared_data, 6 * n, seed=13), folders["cls"], n)
    pairs = [{"text": a, "text_pair": b} for a, b in zip(texts, texts[1:] + texts[:1])]
    ours = pipeline("text-classification", model=folders["cls"], batch_size=8)
    ref = hf_pipeline("text-classification", folders["cls"])
    for params in ({}, {"top_k": None}, {"top_k": 2}, {"function_to_apply": "sigmoid", "top_k": None}):
        got_single, got_pairs = ours(texts, **params), ours(pairs, **params)
        for i, text in enumerate(texts):
            pair = pairs[i]
            for got, want in ((got_single[i], ref(text, **params)), (got_pairs[i], ref(pair, **params))):
                if isinstance(want, list) and params == {}:
                    want = want[0]
                got_l, want_l = (got, want) if isinstance(got, list) else ([got], [want])
                assert [d["label"] for d in got_l] == [d["label"] for d in want_l], (text, params)
                for a, b in zip(got_l, want_l):
                    assert_close(a["score"], b["score"], what=text)
    # A single string without top_k comes back as a one-element list, as in transformers.
    assert isinstance(ours(texts[0]), list) and isinstance(ours(pairs[0]), dict)


# ----------------------------------------------------------------------------- token classification
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification_matches_transformers(folders, shared_data, n, strategy):
    import warnings

    from albertkit import pipeline

    texts = _agreeing(corpus_sentences(shared_data, 6 * n, seed=14), folders["tok"], n)
    ours = pipeline("ner", model=folders["tok"], aggregation_strategy=strategy, batch_size=8)
    ref = hf_pipeline("token-classification", folders["tok"], aggregation_strategy=strategy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers: "Tokenizer does not support real words"
        for text, got in zip(texts, ours(texts, ignore_labels=[])):
            want = ref(text, ignore_labels=[])
            key = "entity" if strategy == "none" else "entity_group"
            assert [(e[key], e["word"], e["start"], e["end"]) for e in got] == [
                (e[key], e["word"], e["start"], e["end"]) for e in want
            ], text
            if strategy == "none":
                assert [e["index"] for e in got] == [e["index"] for e in want]
            for a, b in zip(got, want):
                assert_close(a["score"], b["score"], what=text)


def test_token_classification_ignore_labels_default_drops_O(folders):
    from albertkit import pipeline

    ours = pipeline("ner", model=folders["tok"])
    ref = hf_pipeline("token-classification", folders["tok"])
    text = "My name is Sarah and I live in London."
    assert [e["entity"] for e in ours(text)] == [e["entity"] for e in ref(text)]
    assert all(e["entity"] != "O" for e in ours(text))


# ---------------------------------------------------------------------------------- multiple choice
def test_multiple_choice_matches_transformers_model(folders, shared_data):
    import torch
    import transformers

    from albertkit import pipeline

    sents = _agreeing(corpus_sentences(shared_data, 20 * FAST, seed=15), folders["mc"], 4 * FAST)
    items = [{"question": sents[4 * i], "choices": sents[4 * i + 1 : 4 * i + 4]} for i in range(FAST)]
    got = pipeline("multiple-choice", model=folders["mc"], batch_size=7)(items)
    model = transformers.AlbertForMultipleChoice.from_pretrained(str(folders["mc"])).eval()
    tok = hf_tokenizer(folders["mc"])
    for item, result in zip(items, got):
        enc = tok([item["question"]] * 3, item["choices"], padding=True, return_tensors="pt")
        with torch.no_grad():
            probs = model(**{k: v.unsqueeze(0) for k, v in enc.items()}).logits.softmax(-1)[0].numpy()
        order = np.argsort(-probs, kind="stable")
        assert [r["index"] for r in result] == order.tolist()
        for r in result:
            assert r["choice"] == item["choices"][r["index"]]
            assert_close(r["score"], probs[r["index"]], what=item["question"])
