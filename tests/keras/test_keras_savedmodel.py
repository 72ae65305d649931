"""SavedModel export: tf.saved_model.load runs the serving signature with the Keras model's outputs,
the shared block is stored once, and `albertkit export savedmodel` writes it from a folder."""

from __future__ import annotations

import numpy as np
import pytest
from keras_helpers import make_hf_checkpoint, padded_batch, require_keras, shape_config

require_keras()

import tensorflow as tf  # noqa: E402

import albertkit.keras as ak_keras  # noqa: E402
from albertkit.cli import main  # noqa: E402
from albertkit.keras.checkpoint import hf_variables  # noqa: E402


@pytest.fixture(scope="module")
def pretraining_folder(tmp_path_factory):
    return make_hf_checkpoint(shape_config("g2k2", num_labels=2), "AlbertForPreTraining", tmp_path_factory.mktemp("pt"))


def _serve(folder):
    return tf.saved_model.load(str(folder))


def test_savedmodel_outputs_equal_keras_and_shared_block_is_stored_once(pretraining_folder, tmp_path):
    model = ak_keras.AlbertForPreTraining.from_pretrained(pretraining_folder)
    ak_keras.export_savedmodel(model, tmp_path / "sm")
    loaded = _serve(tmp_path / "sm")
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert sorted(inputs) == ["attention_mask", "input_ids", "token_type_ids"]
    assert all(spec.dtype == tf.int32 and spec.shape.as_list() == [None, None] for spec in inputs.values())

    batch = padded_batch(120)
    got = signature(**{k: tf.constant(v) for k, v in batch.items()})
    want = model(batch)
    assert sorted(got) == sorted(want) == ["prediction_logits", "sop_logits"]
    for key in want:
        np.testing.assert_allclose(got[key].numpy(), np.asarray(want[key]), atol=1e-6, rtol=0)

    # L = 4 virtual layers drawn from G * K = 4 blocks: stored once each, not per application.
    unique = hf_variables(model)
    n_params = sum(int(np.prod(v.shape)) for v, _ in unique.values())
    assert len(loaded.weights) == len(model.weights) == len(unique)
    data = sum(f.stat().st_size for f in (tmp_path / "sm" / "variables").iterdir())
    assert n_params * 4 <= data < n_params * 4 * 1.05 + 65536


def test_cli_export_savedmodel_takes_the_class_from_config(tmp_path, capsys):
    """Also: --int64 inputs, and an older folder's files do not survive."""
    folder = make_hf_checkpoint(shape_config("g2k2"), "AlbertForSequenceClassification", tmp_path / "cls")
    out = tmp_path / "serving" / "1"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("from an older export")
    assert main(["export", "savedmodel", str(folder), str(out), "--int64"]) == 0
    assert not (out / "stale.txt").exists()  # the folder is replaced as a whole
    signature = _serve(out).signatures["serving_default"]
    assert all(spec.dtype == tf.int64 for spec in signature.structured_input_signature[1].values())
    batch = padded_batch(120)
    got = signature(**{k: tf.constant(v, tf.int64) for k, v in batch.items()})["logits"].numpy()
    want = np.asarray(ak_keras.AlbertForSequenceClassification.from_pretrained(folder)(batch)["logits"])
    assert got.shape == (3, 3)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)

    assert main(["export", "savedmodel", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2
    assert "error:" in capsys.readouterr().err
