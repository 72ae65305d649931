"""Write small ALBERT checkpoints in Google's original TF1 format, with real TensorFlow, for the
tests of ``albertkit convert google`` (tests/test_formats_google.py).

Variable names and shapes are those google-research/albert's modeling.py / run_pretraining.py
create (``bert/encoder/transformer/group_G/inner_group_I/attention_1/self/query/kernel`` [H, H],
``cls/predictions/output_bias``, ``cls/seq_relationship/output_weights`` [2, H], ...), plus the
LAMB/Adam slots (``.../adam_m``, ``.../adam_v``) and ``global_step`` a training checkpoint holds.
Two layouts:

* ``plain/``: ``model.ckpt-best`` in two shards (``.data-00000-of-00002`` / ``-00001-of-00002``,
  made by TensorFlow's own MergeV2Checkpoints), every head, 2 groups x 2 inner groups;
* ``hub/``: the TF-Hub module layout (``variables/variables``, names under ``module/``), no SOP
  head (hub modules lack it), 1 group.

Beside each: ``albert_config.json`` (Google's keys) and, as the reference, ``expected_hf.npz``:
the state dict transformers 4.57.1's own TF converter (``load_tf_weights_in_albert``, which needs
TensorFlow) makes from the checkpoint. Run once in a side environment:

    python3.11 -m venv /work/venvs/tf-formats
    /work/venvs/tf-formats/bin/pip install tensorflow-cpu transformers==4.57.1 torch
    /work/venvs/tf-formats/bin/python tests/golden/make_google_checkpoints.py
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

OUT = Path(__file__).resolve().parents[1] / "data" / "google"

CONFIGS = {
    "plain": {  # Google's albert_config.json keys
        "vocab_size": 40, "embedding_size": 8, "hidden_size": 12, "num_hidden_layers": 4, "num_hidden_groups": 2,
        "num_attention_heads": 2, "intermediate_size": 20, "inner_group_num": 2, "down_scale_factor": 1,
        "hidden_act": "gelu", "hidden_dropout_prob": 0, "attention_probs_dropout_prob": 0,
        "max_position_embeddings": 16, "type_vocab_size": 2, "initializer_range": 0.02,
    },
    "hub": {
        "vocab_size": 40, "embedding_size": 8, "hidden_size": 12, "num_hidden_layers": 3, "num_hidden_groups": 1,
        "num_attention_heads": 3, "intermediate_size": 16, "inner_group_num": 1, "down_scale_factor": 1,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 16, "type_vocab_size": 2, "initializer_range": 0.02,
    },
}


def variables(cfg: dict, sop: bool) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every model variable, as modeling.py + run_pretraining.py create them."""
    V, E, H, I, P, T = (cfg[k] for k in ("vocab_size", "embedding_size", "hidden_size", "intermediate_size",
                                         "max_position_embeddings", "type_vocab_size"))
    out = {
        "bert/embeddings/word_embeddings": (V, E),
        "bert/embeddings/token_type_embeddings": (T, E),
        "bert/embeddings/position_embeddings": (P, E),
        "bert/embeddings/LayerNorm/gamma": (E,),
        "bert/embeddings/LayerNorm/beta": (E,),
        "bert/encoder/embedding_hidden_mapping_in/kernel": (E, H),
        "bert/encoder/embedding_hidden_mapping_in/bias": (H,),
    }
    for g in range(cfg["num_hidden_groups"]):
        for i in range(cfg["inner_group_num"]):
            p = f"bert/encoder/transformer/group_{g}/inner_group_{i}/"
            for proj in ("query", "key", "value"):
                out[p + f"attention_1/self/{proj}/kernel"] = (H, H)
                out[p + f"attention_1/self/{proj}/bias"] = (H,)
            out[p + "attention_1/output/dense/kernel"] = (H, H)
            out[p + "attention_1/output/dense/bias"] = (H,)
            out[p + "LayerNorm/gamma"] = (H,)
            out[p + "LayerNorm/beta"] = (H,)
            out[p + "ffn_1/intermediate/dense/kernel"] = (H, I)
            out[p + "ffn_1/intermediate/dense/bias"] = (I,)
            out[p + "ffn_1/intermediate/output/dense/kernel"] = (I, H)
            out[p + "ffn_1/intermediate/output/dense/bias"] = (H,)
            out[p + "LayerNorm_1/gamma"] = (H,)
            out[p + "LayerNorm_1/beta"] = (H,)
    out["bert/pooler/dense/kernel"] = (H, H)
    out["bert/pooler/dense/bias"] = (H,)
    out["cls/predictions/transform/dense/kernel"] = (H, E)
    out["cls/predictions/transform/dense/bias"] = (E,)
    out["cls/predictions/transform/LayerNorm/gamma"] = (E,)
    out["cls/predictions/transform/LayerNorm/beta"] = (E,)
    out["cls/predictions/output_bias"] = (V,)
    if sop:
        out["cls/seq_relationship/output_weights"] = (2, H)
        out["cls/seq_relationship/output_bias"] = (2,)
    return out


def save(prefix: str, tensors: dict[str, np.ndarray]) -> None:
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])


def make(kind: str, rng: np.random.RandomState) -> None:
    cfg = CONFIGS[kind]
    shapes = variables(cfg, sop=kind == "plain")
    model = {name: rng.normal(0, 0.5, size=shape).astype(np.float32) for name, shape in shapes.items()}
    folder = OUT / kind
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if kind == "plain":
        # a training checkpoint: optimizer slots and the step counter, in two shards
        slots = {f"{n}/{s}": rng.normal(0, 0.1, size=v.shape).astype(np.float32) for n, v in model.items() for s in ("adam_m", "adam_v")}
        tensors = {**model, **slots, "global_step": np.array(125000, dtype=np.int64)}
        names = sorted(tensors)
        tmp = tempfile.mkdtemp()
        parts = [f"{tmp}/part0", f"{tmp}/part1"]
        save(parts[0], {n: tensors[n] for n in names[::2]})
        save(parts[1], {n: tensors[n] for n in names[1::2]})
        prefix = str(folder / "model.ckpt-best")
        tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=parts, destination_prefix=prefix, delete_old_dirs=True)
    else:
        (folder / "variables").mkdir()
        prefix = str(folder / "variables" / "variables")
        save(prefix, {"module/" + n: v for n, v in model.items()})
    (folder / "albert_config.json").write_text(json.dumps(cfg, indent=2) + "\n")

    # read back through TensorFlow: what the checkpoint holds, by name
    reader = tf.train.load_checkpoint(prefix)
    read = {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}
    for n, v in model.items():
        key = n if kind == "plain" else "module/" + n
        assert np.array_equal(read[key], v), key

    expected = hf_reference(prefix, cfg, sop=kind == "plain")
    np.savez(folder / "expected_hf.npz", **expected)
    print(kind, sorted(p.name for p in folder.rglob("*") if p.is_file()), len(read), "tensors")


def hf_reference(prefix: str, cfg: dict, sop: bool) -> dict[str, np.ndarray]:
    """transformers 4.57.1's own converter (load_tf_weights_in_albert) applied to the checkpoint."""
    import torch
    from transformers import AlbertConfig, AlbertForPreTraining
    from transformers.models.albert.modeling_albert import load_tf_weights_in_albert

    hf_cfg = AlbertConfig(**{k: v for k, v in cfg.items() if k != "down_scale_factor"})
    model = AlbertForPreTraining(hf_cfg)  # its converter's name rules assume this class
    with torch.no_grad():  # so that a weight the converter misses is visibly not the checkpoint's
        for p in model.parameters():
            p.fill_(float("nan"))
    if sop:
        load_tf_weights_in_albert(model, hf_cfg, prefix)
    else:
        # transformers' converter has no rule for the hub's "module/" prefix: give it the plain names
        tmp = tempfile.mkdtemp() + "/plain"
        reader = tf.train.load_checkpoint(prefix)
        save(tmp, {n.removeprefix("module/"): reader.get_tensor(n) for n in reader.get_variable_to_shape_map()})
        load_tf_weights_in_albert(model, hf_cfg, tmp)
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()
             if "position_ids" not in k and (sop or not k.startswith("sop_classifier."))}
    bad = [k for k, v in state.items() if np.isnan(v).any()]
    assert not bad, f"transformers' converter left these unset: {bad}"
    return state


def main() -> None:
    rng = np.random.RandomState(20191120)
    for kind in CONFIGS:
        make(kind, rng)


if __name__ == "__main__":
    main()
