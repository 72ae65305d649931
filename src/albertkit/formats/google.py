"""Google's original ALBERT checkpoints (TF1, google-research/albert and TF-Hub) -> a Hugging Face folder.

Input: the checkpoint prefix (``model.ckpt-best`` with ``.index`` + ``.data-*`` shards; a TF-Hub
module's ``variables/variables``), Google's ``albert_config.json`` and optionally ``30k-clean.model``.
Output: an HF-layout folder (config.json, model.safetensors[, spiece.model, tokenizer files]) that
transformers and albertkit load. TensorFlow is not used (see :mod:`albertkit.formats.tf_bundle`).

    >>> convert_google_checkpoint("albert_base/model.ckpt-best", "albert_base/albert_config.json",
    ...                           "albert-base-hf", spm="albert_base/30k-clean.model")  # doctest: +SKIP

What is translated, and why:

* config: Google's keys are HF's keys, except the activation. Google's ``"gelu"`` is the tanh
  approximation (modeling.py's ``gelu``), which HF calls ``gelu_new``; HF's ``gelu`` is the erf
  form. Keys of structures HF's ALBERT does not have (``net_structure_type``, ``layers_to_keep``,
  ``gap_size``, ``num_memory_blocks``, ``down_scale_factor``) must have their no-op values.
* variables: ``VARIABLE_RULES`` below, one line per kind; TF kernels are [in, out] and are
  transposed to torch's [out, in]; ``gamma``/``beta`` are LayerNorm's weight/bias. The SOP head's
  ``output_weights`` is already [2, H] (Google multiplies with ``transpose_b=True``).
* skipped: optimizer slots (``*/adam_m``, ``*/adam_v``) and ``global_step``; a TF-Hub ``module/`` prefix
  is removed.
* class: AlbertForPreTraining when both heads are there (Google's pretraining checkpoints),
  AlbertForMaskedLM without the SOP head (TF-Hub modules), AlbertModel without either.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from albertkit.formats.tf_bundle import TensorBundle

__all__ = ["GoogleCheckpointError", "VARIABLE_RULES", "convert_google_checkpoint", "google_config_to_hf", "map_google_variables"]

logger = logging.getLogger(__name__)

# Google's activation names -> HF's (the function computed is what matters; see module docstring)
ACTIVATIONS = {"gelu": "gelu_new", "relu": "relu", "tanh": "tanh", "linear": "linear"}
_CONFIG_KEYS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
                "num_attention_heads", "intermediate_size", "inner_group_num", "hidden_dropout_prob",
                "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size", "initializer_range")
# keys of model variants HF's ALBERT does not implement -> the value that means "not used"
_NO_OP_KEYS = {"down_scale_factor": 1, "net_structure_type": 0, "layers_to_keep": [], "gap_size": 0, "num_memory_blocks": 0}
_SKIP = re.compile(r"(^|/)(adam_m|adam_v)$|^global_step$")

_LEAF = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}
_LAYER_PARTS = {  # inside group_G/inner_group_I/
    "attention_1/self/query": "attention.query",
    "attention_1/self/key": "attention.key",
    "attention_1/self/value": "attention.value",
    "attention_1/output/dense": "attention.dense",
    "LayerNorm": "attention.LayerNorm",
    "ffn_1/intermediate/dense": "ffn",
    "ffn_1/intermediate/output/dense": "ffn_output",
    "LayerNorm_1": "full_layer_layer_norm",
}
# (pattern over the TF name, HF key template); {leaf} is weight/bias from the last name part
VARIABLE_RULES: tuple[tuple[str, str], ...] = (
    (r"bert/embeddings/(word|position|token_type)_embeddings", "albert.embeddings.{0}_embeddings.weight"),
    (r"bert/embeddings/LayerNorm/(gamma|beta)", "albert.embeddings.LayerNorm.{leaf}"),
    (r"bert/encoder/embedding_hidden_mapping_in/(kernel|bias)", "albert.encoder.embedding_hidden_mapping_in.{leaf}"),
    (r"bert/encoder/transformer/group_(\d+)/inner_group_(\d+)/(" + "|".join(_LAYER_PARTS) + r")/(kernel|bias|gamma|beta)",
     "albert.encoder.albert_layer_groups.{0}.albert_layers.{1}.{part}.{leaf}"),
    (r"bert/pooler/dense/(kernel|bias)", "albert.pooler.{leaf}"),
    (r"cls/predictions/transform/dense/(kernel|bias)", "predictions.dense.{leaf}"),
    (r"cls/predictions/transform/LayerNorm/(gamma|beta)", "predictions.LayerNorm.{leaf}"),
    (r"cls/predictions/output_bias", "predictions.bias"),
    (r"cls/seq_relationship/output_weights", "sop_classifier.classifier.weight"),
    (r"cls/seq_relationship/output_bias", "sop_classifier.classifier.bias"),
)
_COMPILED = [(re.compile(p + "$"), t) for p, t in VARIABLE_RULES]
# key prefixes of the two heads (TF names cls/predictions/*, cls/seq_relationship/*)
_MLM_PREFIX, _SOP_PREFIX = "predictions.", "sop_classifier."


class GoogleCheckpointError(ValueError):
    """A Google checkpoint or config that cannot be converted; the message names the variable or key."""


def google_config_to_hf(data: dict[str, Any], where: str = "albert_config.json") -> dict[str, Any]:
    """Google's ``albert_config.json`` -> the HF ``config.json`` dict that computes the same function."""
    if not isinstance(data, dict):
        raise GoogleCheckpointError(f"{where}: expected a JSON object")
    missing = [k for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size") if k not in data]
    if missing:
        raise GoogleCheckpointError(f"{where}: missing {', '.join(missing)}")
    for key, noop in _NO_OP_KEYS.items():
        if key in data and data[key] != noop and not (noop == [] and data[key] in (None, "")):
            raise GoogleCheckpointError(f"{where}: {key}={data[key]!r} is a model variant HF's ALBERT does not implement (only {noop!r})")
    act = data.get("hidden_act", "gelu")
    if not isinstance(act, str) or act.lower() not in ACTIVATIONS:
        raise GoogleCheckpointError(f"{where}: hidden_act {act!r} is not one of Google's {', '.join(ACTIVATIONS)}")
    out = {k: data[k] for k in _CONFIG_KEYS if k in data}
    out["hidden_act"] = ACTIVATIONS[act.lower()]
    out.setdefault("embedding_size", 128)  # Google's defaults (modeling.AlbertConfig)
    out.setdefault("num_hidden_groups", 1)
    out.setdefault("inner_group_num", 1)
    out["layer_norm_eps"] = 1e-12  # contrib layer_norm's epsilon
    unknown = sorted(set(data) - set(_CONFIG_KEYS) - set(_NO_OP_KEYS) - {"hidden_act"})
    if unknown:
        logger.warning("%s: ignoring keys Google's modeling.py does not read either: %s", where, ", ".join(unknown))
    return out


def _hf_key(name: str) -> tuple[str, bool] | None:
    """(HF key, transpose) for one TF variable name, or None if no rule matches."""
    for pattern, template in _COMPILED:
        m = pattern.match(name)
        if m is None:
            continue
        groups = m.groups()
        leaf = _LEAF.get(name.rsplit("/", 1)[-1], "")
        part = _LAYER_PARTS.get(groups[2], "") if len(groups) >= 3 else ""
        return template.format(*groups, leaf=leaf, part=part), name.endswith("/kernel")
    return None


def map_google_variables(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[str, bool]]:
    """TF variable name -> (HF key, transpose) for every model variable; optimizer state is left out.

    Raises :class:`GoogleCheckpointError` naming any variable (and its shape) no rule knows.
    """
    names = [n for n in shapes if not _SKIP.search(n)]
    hub = bool(names) and all(n.startswith("module/") for n in names)
    out: dict[str, tuple[str, bool]] = {}
    unknown = []
    for name in names:
        mapped = _hf_key(name[len("module/"):] if hub else name)
        if mapped is None:
            unknown.append(f"{name} {list(shapes[name])}")
        else:
            out[name] = mapped
    if unknown:
        raise GoogleCheckpointError(f"unexpected variable(s) in the checkpoint, not part of Google's ALBERT: {', '.join(sorted(unknown))}")
    return out


def convert_google_checkpoint(
    checkpoint: str | os.PathLike,
    config: str | os.PathLike,
    output: str | os.PathLike,
    *,
    spm: str | os.PathLike | None = None,
    verify: bool = True,
) -> Path:
    """Convert Google's TF1 ALBERT checkpoint to an HF folder (see the module docstring).

    Args:
        checkpoint: the checkpoint prefix (``.../model.ckpt-best``), its ``.index`` file, or a folder
            (a TF-Hub module, or one holding a single checkpoint).
        config: Google's ``albert_config.json``.
        output: the folder to write (created; its model files are replaced atomically).
        spm: Google's SentencePiece model (``30k-clean.model``), saved as the folder's tokenizer.
        verify: check every crc32c of the checkpoint.

    Returns the output folder.
    """
    import torch

    from albertkit.config import AlbertConfig, ConfigError
    from albertkit.modeling import AlbertForMaskedLM, AlbertForPreTraining, AlbertModel

    config_path = Path(config)
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GoogleCheckpointError(f"{config_path}: cannot read ({exc})") from None
    hf = google_config_to_hf(raw, str(config_path))

    bundle = TensorBundle(resolve_checkpoint_prefix(checkpoint), verify=verify)
    mapping = map_google_variables(bundle.shapes())
    keys = {key for key, _ in mapping.values()}
    has_mlm = any(k.startswith(_MLM_PREFIX) for k in keys)
    has_sop = any(k.startswith(_SOP_PREFIX) for k in keys)
    cls = AlbertForPreTraining if has_mlm and has_sop else AlbertForMaskedLM if has_mlm else AlbertModel
    if has_sop and not has_mlm:
        raise GoogleCheckpointError(f"{bundle.index_path}: has the SOP head (cls/seq_relationship/*) but not the MLM head (cls/predictions/*)")
    if not has_sop:
        logger.warning("%s: no SOP head (cls/seq_relationship/*; TF-Hub modules lack it): writing %s", bundle.index_path, cls.__name__)
    try:
        albert_config = AlbertConfig.from_dict(hf)
    except ConfigError as exc:
        raise GoogleCheckpointError(f"{config_path}: {exc}") from None
    with torch.device("meta"):
        model = cls(albert_config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith("predictions.decoder.")}
    # a masked-LM class has no pooler; the checkpoint's is kept beside it (for fine-tuning)
    extra = {"albert.pooler.weight": (albert_config.hidden_size,) * 2, "albert.pooler.bias": (albert_config.hidden_size,)}
    extra = extra if cls is AlbertForMaskedLM else {}
    expected.update(extra)
    if cls is AlbertModel:  # the base model's keys carry no "albert." prefix
        mapping = {n: (k.removeprefix("albert."), t) for n, (k, t) in mapping.items()}
    by_key = {k: (n, t) for n, (k, t) in mapping.items()}
    tf_name = {v: k for k, v in _reverse_names(albert_config, has_mlm, has_sop, cls is AlbertModel).items()}
    missing = [f"{tf_name.get(k, k)} {list(_tf_shape(s, k))}" for k, s in expected.items() if k not in by_key]
    if missing:
        raise GoogleCheckpointError(f"{bundle.index_path}: missing variable(s) for this config: {', '.join(missing)}")
    unexpected = [f"{n} {list(bundle.entries[n].shape)}" for k, (n, _) in by_key.items() if k not in expected]
    if unexpected:
        raise GoogleCheckpointError(
            f"{bundle.index_path}: variable(s) this config has no place for (num_hidden_groups / inner_group_num?): {', '.join(sorted(unexpected))}"
        )

    state: dict[str, torch.Tensor] = {}
    for key, (name, transpose) in by_key.items():
        array = bundle.read(name)
        if transpose:
            array = array.T
        if tuple(array.shape) != expected[key]:
            raise GoogleCheckpointError(
                f"{bundle.index_path}: {name} has shape {list(bundle.entries[name].shape)}, but the config needs "
                f"{list(_tf_shape(expected[key], key))} for {key}"
            )
        state[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    model = cls(albert_config)
    extra_state = {k: state.pop(k) for k in extra}
    result = model.load_state_dict(state, strict=False)
    left = [k for k in result.missing_keys if not k.startswith("predictions.decoder.")]
    if left or result.unexpected_keys:  # pragma: no cover - the checks above cover every key
        raise GoogleCheckpointError(f"internal: keys not loaded {left}, unexpected {result.unexpected_keys}")
    output = Path(output)
    from albertkit.checkpoint import save_pretrained

    save_pretrained(model, output, extra_state=extra_state)
    if spm is not None:
        from albertkit.tokenization import AlbertTokenizer

        tok = AlbertTokenizer(spm)
        if tok.vocab_size != albert_config.vocab_size:
            raise GoogleCheckpointError(f"{spm}: {tok.vocab_size} pieces, but {config_path} has vocab_size {albert_config.vocab_size}")
        tok.save_pretrained(output)
    logger.info("wrote %s (%s, %d tensors from %s)", output, cls.__name__, len(state), bundle.prefix)
    return output


def resolve_checkpoint_prefix(path: str | os.PathLike) -> str:
    """The checkpoint prefix for a prefix, an ``.index`` file, a TF-Hub module folder
    (``variables/variables``), or a folder with a TF ``checkpoint`` file or a single ``.index``."""
    path = Path(path)
    if not path.is_dir():
        return str(path)
    if (path / "variables" / "variables.index").is_file():
        return str(path / "variables" / "variables")
    state = path / "checkpoint"
    if state.is_file():  # text proto: model_checkpoint_path: "model.ckpt-best"
        m = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', state.read_text(encoding="utf-8"), re.M)
        if m:
            target = Path(m.group(1))
            return str(target if target.is_absolute() else path / target)
    indexes = sorted(path.glob("*.index"))
    if len(indexes) == 1:
        return str(indexes[0])[: -len(".index")]
    found = ", ".join(p.name for p in indexes) or "none"
    raise GoogleCheckpointError(f"{path}: a folder; give the checkpoint prefix (e.g. {path}/model.ckpt-best); .index files here: {found}")


def _tf_shape(shape: tuple[int, ...], key: str) -> tuple[int, ...]:
    """The TF shape of an HF tensor (kernels are stored [in, out])."""
    linear = key.endswith(".weight") and len(shape) == 2 and "embeddings" not in key and not key.startswith(_SOP_PREFIX)
    return tuple(reversed(shape)) if linear else shape


def _reverse_names(config: Any, mlm: bool, sop: bool, base: bool) -> dict[str, str]:
    """TF name -> HF key of every variable this config needs (to name missing variables in errors)."""
    names = ["bert/embeddings/word_embeddings", "bert/embeddings/position_embeddings", "bert/embeddings/token_type_embeddings",
             "bert/embeddings/LayerNorm/gamma", "bert/embeddings/LayerNorm/beta",
             "bert/encoder/embedding_hidden_mapping_in/kernel", "bert/encoder/embedding_hidden_mapping_in/bias",
             "bert/pooler/dense/kernel", "bert/pooler/dense/bias"]
    for g in range(config.num_hidden_groups):
        for i in range(config.inner_group_num):
            for part in _LAYER_PARTS:
                leaves = ("gamma", "beta") if part.startswith("LayerNorm") else ("kernel", "bias")
                names += [f"bert/encoder/transformer/group_{g}/inner_group_{i}/{part}/{leaf}" for leaf in leaves]
    if mlm:
        names += ["cls/predictions/transform/dense/kernel", "cls/predictions/transform/dense/bias",
                  "cls/predictions/transform/LayerNorm/gamma", "cls/predictions/transform/LayerNorm/beta", "cls/predictions/output_bias"]
    if sop:
        names += ["cls/seq_relationship/output_weights", "cls/seq_relationship/output_bias"]
    out = {}
    for n in names:
        key, _ = _hf_key(n)  # type: ignore[misc]
        out[n] = key.removeprefix("albert.") if base else key
    return out
