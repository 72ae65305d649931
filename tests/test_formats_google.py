"""Google's original TF1 checkpoints -> HF folder, without TensorFlow.

The checkpoints under tests/data/google were written by real TensorFlow 2.21 (raw SaveV2 +
MergeV2Checkpoints) with google-research/albert's variable names, by
tests/golden/make_google_checkpoints.py; ``expected_hf.npz`` beside each is what transformers
4.57.1's own TF converter (``load_tf_weights_in_albert``) made from the same checkpoint.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import require_reference

DATA = Path(__file__).parent / "data" / "google"
PLAIN = DATA / "plain" / "model.ckpt-best"
HUB = DATA / "hub" / "variables" / "variables"


def _convert(prefix, config, out, **kw):
    from albertkit.formats.google import convert_google_checkpoint

    return convert_google_checkpoint(prefix, config, out, **kw)


def test_bundle_reader_sees_what_tensorflow_wrote():
    from albertkit.formats.tf_bundle import TensorBundle

    b = TensorBundle(PLAIN)
    assert b.num_shards == 2
    assert {e.shard for e in b.entries.values()} == {0, 1}
    assert b.read("global_step") == 125000 and b.read("global_step").dtype == np.int64
    assert b.shapes()["bert/encoder/transformer/group_1/inner_group_1/ffn_1/intermediate/dense/kernel"] == (12, 20)
    assert len([n for n in b.entries if n.endswith(("/adam_m", "/adam_v"))]) == 2 * 80


def test_plain_checkpoint_in_transformers_equals_transformers_own_converter(tmp_path):
    transformers = require_reference("transformers")
    out = _convert(PLAIN, DATA / "plain" / "albert_config.json", tmp_path / "hf")
    model = transformers.AlbertForPreTraining.from_pretrained(str(out))
    expected = np.load(DATA / "plain" / "expected_hf.npz")
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    assert set(state) == set(expected.files)
    bad = [k for k in expected.files if not np.array_equal(state[k], expected[k])]
    assert not bad
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architectures"] == ["AlbertForPreTraining"]
    assert (cfg["hidden_act"], cfg["num_hidden_groups"], cfg["inner_group_num"]) == ("gelu_new", 2, 2)


def test_conversion_never_imports_tensorflow(tmp_path):
    # In a fresh interpreter: this test process may hold TensorFlow already (the Keras tests load it).
    probe = (
        "import sys; from albertkit.cli import main; "
        f"code = main(['-q', 'convert', 'google', {str(PLAIN)!r}, '--config', {str(DATA / 'plain' / 'albert_config.json')!r}, "
        f"'--output', {str(tmp_path / 'hf')!r}]); "
        "print(code, any(m.split('.')[0] == 'tensorflow' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["0", "False"], out.stderr[-2000:]


def test_hub_module_keeps_every_weight(tmp_path):
    transformers = require_reference("transformers")
    from safetensors.numpy import load_file

    out = _convert(HUB, DATA / "hub" / "albert_config.json", tmp_path / "hf")
    expected = np.load(DATA / "hub" / "expected_hf.npz")
    raw = load_file(str(out / "model.safetensors"))
    # every weight of the module, the pooler included (kept beside the masked-LM head for fine-tuning)
    assert set(raw) == set(expected.files) - {"predictions.decoder.weight", "predictions.decoder.bias"}
    assert all(np.array_equal(raw[k], expected[k]) for k in raw)
    model = transformers.AlbertForMaskedLM.from_pretrained(str(out))
    assert all(np.array_equal(v.numpy(), expected[k]) for k, v in model.state_dict().items())
    assert json.loads((out / "config.json").read_text())["architectures"] == ["AlbertForMaskedLM"]


def test_checkpoint_given_as_a_folder(tmp_path):
    from albertkit.formats.google import GoogleCheckpointError, resolve_checkpoint_prefix

    assert resolve_checkpoint_prefix(DATA / "hub") == str(HUB)
    assert resolve_checkpoint_prefix(DATA / "plain") == str(PLAIN)
    assert resolve_checkpoint_prefix(str(PLAIN) + ".index") == str(PLAIN) + ".index"  # TensorBundle takes it
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-7"\nall_model_checkpoint_paths: "model.ckpt-7"\n')
    assert resolve_checkpoint_prefix(tmp_path) == str(tmp_path / "model.ckpt-7")
    (tmp_path / "checkpoint").unlink()
    with pytest.raises(GoogleCheckpointError, match="give the checkpoint prefix"):
        resolve_checkpoint_prefix(tmp_path)


def test_albertkit_loads_the_converted_folder(tmp_path):
    import torch

    from albertkit import AlbertForPreTraining

    out = _convert(PLAIN, DATA / "plain" / "albert_config.json", tmp_path / "hf")
    model = AlbertForPreTraining.from_pretrained(out)
    expected = np.load(DATA / "plain" / "expected_hf.npz")
    for k, v in model.state_dict().items():
        assert np.array_equal(v.numpy(), expected[k]), k
    out = model(torch.tensor([[2, 5, 6, 3]]))
    assert out.sop_logits.shape == (1, 2)


def test_googles_gelu_is_gelu_new():
    torch = require_reference("torch")
    from transformers.activations import ACT2FN

    from albertkit.formats.google import google_config_to_hf

    assert google_config_to_hf({"vocab_size": 4, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 1,
                                "intermediate_size": 4, "hidden_act": "gelu"})["hidden_act"] == "gelu_new"
    x = np.linspace(-6, 6, 101, dtype=np.float64)
    google = 0.5 * x * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))  # modeling.py's gelu
    ours = ACT2FN["gelu_new"](torch.tensor(x)).numpy()
    assert np.allclose(ours, google, atol=1e-12, rtol=0)
    assert not np.allclose(ACT2FN["gelu"](torch.tensor(x)).numpy(), google, atol=1e-5, rtol=0)


def test_cli_converts_with_the_tokenizer(tmp_path):
    spm = require_reference("sentencepiece")
    from albertkit import AlbertTokenizer
    from albertkit.cli import main

    # a 40-piece SentencePiece model made by sentencepiece's own trainer, laid out as ALBERT's
    text = tmp_path / "text.txt"
    words = [a + b + c for a in "abcdef" for b in "aeiou" for c in "bcdfg"]
    text.write_text("\n".join(" ".join(words[i : i + 7]) for i in range(0, len(words), 3)) + "\n")
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(tmp_path / "30k-clean"), vocab_size=40, model_type="unigram",
                                   pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, control_symbols="[CLS],[SEP],[MASK]", minloglevel=2)
    out = tmp_path / "hf"
    rc = main(["convert", "google", str(PLAIN), "--config", str(DATA / "plain" / "albert_config.json"),
               "--spm", str(tmp_path / "30k-clean.model"), "--output", str(out)])
    assert rc == 0
    assert {"config.json", "model.safetensors", "spiece.model", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert AlbertTokenizer.from_pretrained(out)("bab cag")["input_ids"][0] == 2


def test_cli_errors_are_one_line(tmp_path, capsys, spiece_path):
    from albertkit.cli import main

    rc = main(["convert", "google", str(PLAIN), "--config", str(DATA / "plain" / "albert_config.json"),
               "--spm", str(spiece_path), "--output", str(tmp_path / "hf")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "30000 pieces" in err and "vocab_size 40" in err
    rc = main(["convert", "google", str(tmp_path / "nope"), "--config", str(DATA / "plain" / "albert_config.json"), "--output", str(tmp_path / "x")])
    assert rc == 2 and "nope.index: checkpoint index not found" in capsys.readouterr().err


def _config(tmp_path, **changes):
    cfg = json.loads((DATA / "plain" / "albert_config.json").read_text())
    cfg.update(changes)
    path = tmp_path / "albert_config.json"
    path.write_text(json.dumps(cfg))
    return path


def test_errors_name_the_variable_and_shape(tmp_path):
    from albertkit.formats.google import GoogleCheckpointError

    with pytest.raises(GoogleCheckpointError, match=r"missing variable\(s\).*bert/encoder/transformer/group_2/inner_group_0/attention_1/self/query/kernel \[12, 12\]"):
        _convert(PLAIN, _config(tmp_path, num_hidden_groups=3, num_hidden_layers=6), tmp_path / "a")
    with pytest.raises(GoogleCheckpointError, match=r"no place for.*group_0/inner_group_1/LayerNorm/beta \[12\]"):
        _convert(PLAIN, _config(tmp_path, inner_group_num=1), tmp_path / "b")
    with pytest.raises(GoogleCheckpointError, match=r"ffn_1/intermediate/dense/bias has shape \[20\], but the config needs \[24\]"):
        _convert(PLAIN, _config(tmp_path, intermediate_size=24), tmp_path / "c")
    with pytest.raises(GoogleCheckpointError, match=r"hidden_act 'swish'"):
        _convert(PLAIN, _config(tmp_path, hidden_act="swish"), tmp_path / "d")
    with pytest.raises(GoogleCheckpointError, match=r"net_structure_type=1"):
        _convert(PLAIN, _config(tmp_path, net_structure_type=1), tmp_path / "e")
    assert not (tmp_path / "a").exists()


def test_unknown_variables_are_named():
    from albertkit.formats.google import GoogleCheckpointError, map_google_variables

    shapes = {"bert/embeddings/word_embeddings": (4, 2), "bert/embeddings/word_embeddings/adam_m": (4, 2),
              "global_step": (), "bert/encoder/extra_thing/kernel": (3, 5)}
    with pytest.raises(GoogleCheckpointError, match=r"bert/encoder/extra_thing/kernel \[3, 5\]"):
        map_google_variables(shapes)
    del shapes["bert/encoder/extra_thing/kernel"]
    assert map_google_variables(shapes) == {"bert/embeddings/word_embeddings": ("albert.embeddings.word_embeddings.weight", False)}


def test_corruption_is_caught_by_crc32c(tmp_path):
    from albertkit.formats.tf_bundle import BundleError, TensorBundle

    for f in PLAIN.parent.glob("model.ckpt-best.*"):
        shutil.copy(f, tmp_path / f.name)
    prefix = tmp_path / "model.ckpt-best"
    b = TensorBundle(prefix)
    e = b.entries["bert/pooler/dense/kernel"]
    data = b.data_path(e.shard)
    raw = bytearray(data.read_bytes())
    raw[e.offset + 5] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match=r"data-0000\d-of-00002: crc32c mismatch for bert/pooler/dense/kernel"):
        TensorBundle(prefix).read("bert/pooler/dense/kernel")
    assert TensorBundle(prefix, verify=False).read("bert/pooler/dense/kernel").shape == (12, 12)
    index = bytearray((tmp_path / "model.ckpt-best.index").read_bytes())
    index[10] ^= 0x01
    (tmp_path / "model.ckpt-best.index").write_bytes(bytes(index))
    with pytest.raises(BundleError, match=r"model.ckpt-best.index: crc32c mismatch in the block at byte 0"):
        TensorBundle(prefix)


def test_crc32c_and_snappy_by_hand():
    from albertkit.formats.tf_bundle import _crc32c_python, _snappy_decompress, crc32c

    assert _crc32c_python(b"123456789") == 0xE3069283  # the CRC-32C check value
    blob = bytes(range(256)) * 7
    assert _crc32c_python(blob) == crc32c(blob)
    # preamble 10, literal "abcd", copy (1-byte offset) of 6 bytes from 4 back: overlapping
    assert _snappy_decompress(bytes([10, 0x0C]) + b"abcd" + bytes([0x01 | (2 << 2), 4])) == b"abcdabcdab"
    # literal with a one-byte length (61 bytes), then a 2-byte-offset copy of 3 bytes
    lit = bytes(range(61))
    assert _snappy_decompress(bytes([64, 60 << 2, 60]) + lit + bytes([0x02 | (2 << 2), 61, 0])) == lit + lit[:3]
