"""The key policy and the errors of albertkit.keras.checkpoint, and the .bin path."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from keras_helpers import make_hf_checkpoint, padded_batch, require_keras, shape_config

require_keras()

import keras  # noqa: E402

import albertkit.keras as ak_keras  # noqa: E402
from albertkit import ModelNotFoundError  # noqa: E402
from albertkit.keras.checkpoint import hf_variables  # noqa: E402
from albertkit.layout import CheckpointError  # noqa: E402


@pytest.fixture(scope="module")
def pretraining_folder(tmp_path_factory):
    return make_hf_checkpoint(shape_config("g2k2"), "AlbertForPreTraining", tmp_path_factory.mktemp("pt"))


def test_every_variable_has_one_checkpoint_key():
    for cls in (ak_keras.AlbertModel, ak_keras.AlbertForPreTraining, ak_keras.AlbertForQuestionAnswering):
        model = cls(shape_config("g2k2")).build_weights()
        keys = hf_variables(model)
        assert len(keys) == len(model.trainable_weights) == len({id(v) for v, _ in keys.values()})


def test_task_model_from_pretraining_checkpoint_drops_heads_and_initialises_its_own(pretraining_folder, caplog):
    model = ak_keras.AlbertForSequenceClassification.from_pretrained(pretraining_folder, num_labels=3)
    assert sorted(model.loading_info["new_weights"]) == ["classifier.bias", "classifier.weight"]
    assert any(k.startswith("predictions.") for k in model.loading_info["dropped_weights"])
    assert "newly initialised" in caplog.text
    base = ak_keras.AlbertModel.from_pretrained(pretraining_folder)
    batch = padded_batch(120)
    np.testing.assert_allclose(
        np.asarray(base(batch)["pooler_output"]), np.asarray(model.albert(batch)["pooler_output"]), atol=1e-6
    )


def test_pytorch_bin_reads_like_safetensors(tmp_path):
    import shutil

    import torch
    import transformers

    cfg = shape_config("g2k2")
    folder = make_hf_checkpoint(cfg, "AlbertForMaskedLM", tmp_path / "st")
    # transformers 5 writes only safetensors; the legacy .bin is torch.save of its state dict
    (tmp_path / "bin").mkdir()
    shutil.copy(folder / "config.json", tmp_path / "bin")
    torch.save(transformers.AlbertForMaskedLM.from_pretrained(folder).state_dict(), tmp_path / "bin" / "pytorch_model.bin")
    batch = padded_batch(cfg.vocab_size)
    a = ak_keras.AlbertForMaskedLM.from_pretrained(folder)(batch)["logits"]
    b = ak_keras.AlbertForMaskedLM.from_pretrained(tmp_path / "bin")(batch)["logits"]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_missing_and_misshapen_weights_are_named(pretraining_folder, tmp_path):
    from safetensors.numpy import load_file, save_file

    state = load_file(str(pretraining_folder / "model.safetensors"))
    config = json.loads((pretraining_folder / "config.json").read_text())
    broken = dict(state)
    del broken["albert.encoder.albert_layer_groups.1.albert_layers.0.ffn.weight"]
    (tmp_path / "missing").mkdir()
    save_file(broken, str(tmp_path / "missing" / "model.safetensors"))
    (tmp_path / "missing" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="missing 1 weight.*albert_layer_groups.1.albert_layers.0.ffn.weight"):
        ak_keras.AlbertForPreTraining.from_pretrained(tmp_path / "missing")
    config["hidden_size"] = 64
    config["intermediate_size"] = 64
    (tmp_path / "missing" / "config.json").write_text(json.dumps(config))
    save_file(state, str(tmp_path / "missing" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        ak_keras.AlbertForPreTraining.from_pretrained(tmp_path / "missing")


def test_hub_name_fails_fast_and_clearly_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError, match="albert-base-v2.*HF_HUB_OFFLINE"):
        ak_keras.AlbertModel.from_pretrained("albert-base-v2")
    assert time.monotonic() - start < 5


def test_bad_inputs_are_named():
    model = ak_keras.AlbertModel(shape_config("g2k2")).build_weights()
    with pytest.raises(ValueError, match="unexpected model inputs: labels"):
        model({"input_ids": np.ones((1, 3), "int32"), "labels": np.ones((1,), "int32")})
    with pytest.raises(ValueError, match=r"input_ids must be \[B, T\]"):
        model(np.ones((3,), "int32"))
    with pytest.raises(ValueError, match="exceeds max_position_embeddings"):
        model(np.ones((1, 65), "int32"))


def test_bfloat16_safetensors_load_as_float32(tmp_path):
    import torch
    import transformers

    cfg = shape_config("g2k2")
    folder = make_hf_checkpoint(cfg, "AlbertModel", tmp_path / "fp32")
    hf = transformers.AlbertModel.from_pretrained(folder).to(torch.bfloat16)
    hf.save_pretrained(tmp_path / "bf16")
    model = ak_keras.AlbertModel.from_pretrained(tmp_path / "bf16")
    state = {k: v.float().numpy() for k, v in hf.state_dict().items()}
    got = keras.ops.convert_to_numpy(model.encoder.albert_layer_groups[1].albert_layers[0].ffn.kernel)
    np.testing.assert_array_equal(got, state["encoder.albert_layer_groups.1.albert_layers.0.ffn.weight"].T)


def test_load_run_and_save_never_import_torch(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "from albertkit import AlbertTokenizer\n"
        "from albertkit.keras import AlbertForPreTraining\n"
        "model = AlbertForPreTraining.from_pretrained('albert-mini-en')\n"
        "model(AlbertTokenizer.from_pretrained('albert-mini-en')('hi there', return_tensors='tf'))\n"
        f"model.save_pretrained({str(tmp_path / 'out')!r})\n"
        "assert 'torch' not in sys.modules\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
    assert (tmp_path / "out" / "model.safetensors").is_file()
