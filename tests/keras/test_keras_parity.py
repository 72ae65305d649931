"""Every Keras head against transformers and albertkit (PyTorch), both ways through HF folders.

Checkpoints are random-weight transformers models saved by transformers (every parameter random,
biases and LayerNorms too), at ALBERT-base shape and at a G=2 / K=2 shape with exact GELU; inputs
are padded batches with two segments. The Keras model's own save is then read by transformers.
"""

from __future__ import annotations

import numpy as np
import pytest
from keras_helpers import make_hf_checkpoint, padded_batch, require_keras, shape_config

require_keras()

import torch  # noqa: E402
import transformers  # noqa: E402

import albertkit.keras as ak_keras  # noqa: E402
import albertkit.modeling as ak_torch  # noqa: E402

HEADS = (
    "AlbertModel",
    "AlbertForPreTraining",
    "AlbertForMaskedLM",
    "AlbertForSequenceClassification",
    "AlbertForTokenClassification",
    "AlbertForQuestionAnswering",
)
TOL = 1e-5  # fp32; measured differences are ~1e-6 at base shape


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    made: dict[tuple[str, str], object] = {}

    def get(shape: str, head: str):
        if (shape, head) not in made:
            folder = tmp_path_factory.mktemp(f"{shape}-{head}")
            # transformers sizes qa_outputs by num_labels and splits it in two: QA models have 2
            config = shape_config(shape, **({"num_labels": 2} if head == "AlbertForQuestionAnswering" else {}))
            made[shape, head] = make_hf_checkpoint(config, head, folder)
        return made[shape, head]

    return get


def _torch_outputs(model, batch):
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v.copy()).long() for k, v in batch.items()})
    return out


def _assert_same(keras_out, reference, what):
    assert keras_out, what
    for key, value in keras_out.items():
        ref = reference[key].numpy()
        value = np.asarray(value)
        assert value.shape == ref.shape, f"{what} {key}: {value.shape} vs {ref.shape}"
        diff = float(np.abs(value - ref).max())
        assert diff < TOL, f"{what} {key}: max |diff| {diff:.2e}"


@pytest.mark.parametrize("shape", ["g2k2", "base"])
@pytest.mark.parametrize("head", HEADS)
def test_head_matches_transformers_and_albertkit(checkpoint, shape, head, tmp_path):
    folder = checkpoint(shape, head)
    batch = padded_batch(shape_config(shape).vocab_size)
    model = getattr(ak_keras, head).from_pretrained(folder)
    out = model(batch)
    hf = getattr(transformers, head).from_pretrained(folder).eval()
    _assert_same(out, _torch_outputs(hf, batch), f"{shape} {head} vs transformers")
    _assert_same(out, _torch_outputs(getattr(ak_torch, head).from_pretrained(folder), batch), f"{shape} {head} vs albertkit")
    assert model.loading_info["new_weights"] == []

    # and back: what Keras writes, transformers reads with the same outputs
    model.save_pretrained(tmp_path / "keras-save")
    again = getattr(transformers, head).from_pretrained(tmp_path / "keras-save").eval()
    _assert_same(out, _torch_outputs(again, batch), f"{shape} {head} saved by Keras, read by transformers")


def test_tokenizer_batch_encoding_is_accepted(checkpoint):
    """The model card's call: model(tokenizer(text, return_tensors="tf")), here with the two-segment ids."""
    import tensorflow as tf

    from albertkit.tokenization import BatchEncoding

    folder = checkpoint("g2k2", "AlbertModel")
    batch = padded_batch(shape_config("g2k2").vocab_size)
    model = ak_keras.AlbertModel.from_pretrained(folder)
    enc = BatchEncoding({k: tf.constant(v) for k, v in batch.items()})
    got = model(enc)["last_hidden_state"]
    want = model(batch["input_ids"], attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"])
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want["last_hidden_state"]))
