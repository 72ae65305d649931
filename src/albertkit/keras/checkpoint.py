"""Hugging Face folders <-> Keras ALBERT models, with numpy only (no torch for safetensors).

The checkpoint key of a Keras variable is its attribute path, as for the PyTorch modules
(``albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight``); Dense kernels are stored
transposed ([in, out] in Keras, [out, in] in PyTorch). The key policy is the one of
:mod:`albertkit.checkpoint` (the ``albert.`` prefix, the legacy ``position_ids``, the tied decoder,
other classes' heads dropped, new heads initialised and logged); any other missing or unexpected
key raises :class:`~albertkit.layout.CheckpointError` listing it.

    >>> model = load_pretrained(AlbertForMaskedLM, "albert-mini-en")  # doctest: +SKIP
    >>> save_pretrained(model, "out/mlm")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from albertkit.config import CONFIG_NAME, AlbertConfig
from albertkit.hub import resolve_file, resolve_first
from albertkit.layout import SAFE_WEIGHTS_NAME, WEIGHTS_NAME, CheckpointError, adapt_keys, fit_error, is_head_key
from albertkit.utils import atomic_folder, ordinary_permissions

__all__ = ["hf_variables", "read_weights", "load_pretrained", "save_pretrained"]

logger = logging.getLogger(__name__)


def hf_variables(layer: keras.layers.Layer, prefix: str = "") -> dict[str, tuple[keras.Variable, bool]]:
    """Checkpoint key -> (variable, stored transposed?) for every weight under ``layer``.

    Walks public attributes as ``nn.Module.state_dict`` walks submodules: a list attribute
    contributes ``name.i.`` (``albert_layer_groups.0.``).
    """
    if isinstance(layer, keras.layers.Dense):
        return {prefix + "weight": (layer.kernel, True), prefix + "bias": (layer.bias, False)}
    if isinstance(layer, keras.layers.LayerNormalization):
        return {prefix + "weight": (layer.gamma, False), prefix + "bias": (layer.beta, False)}
    if isinstance(layer, keras.layers.Embedding):
        return {prefix + "weight": (layer.embeddings, False)}
    out: dict[str, tuple[keras.Variable, bool]] = {}
    for name, value in vars(layer).items():
        if name.startswith("_"):
            continue
        if isinstance(value, keras.Variable):
            out[prefix + name] = (value, False)
        elif isinstance(value, keras.layers.Layer):
            out.update(hf_variables(value, f"{prefix}{name}."))
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, keras.layers.Layer):
                    out.update(hf_variables(item, f"{prefix}{name}.{i}."))
    return out


def read_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``model.safetensors`` through safetensors.numpy; ``pytorch_model.bin`` (a torch pickle) needs torch."""
    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file

            return load_file(str(path))
        except TypeError as exc:  # a dtype numpy lacks: bfloat16 (a bf16 save of albertkit or transformers)
            if "bfloat16" not in str(exc):
                raise CheckpointError(f"{path}: cannot read weights ({exc})") from None
            try:
                return _read_bf16_safetensors(path)
            except (OSError, ValueError, KeyError) as exc2:
                raise CheckpointError(f"{path}: cannot read weights ({type(exc2).__name__}: {exc2})") from None
        except Exception as exc:  # corrupt or truncated
            raise CheckpointError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path}: pytorch_model.bin is a torch pickle; reading it needs torch (pip install torch), "
            "or convert the folder once to model.safetensors"
        ) from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in state.items()}


def _read_bf16_safetensors(path: Path) -> dict[str, np.ndarray]:
    """A safetensors file with bfloat16 tensors, as float32 (bf16 is the top half of an fp32)."""
    plain = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(header_len))
        start = 8 + header_len
        for key, info in header.items():
            if key == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            fh.seek(start + begin)
            raw = fh.read(end - begin)
            if info["dtype"] == "BF16":
                value = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            elif info["dtype"] in plain:
                value = np.frombuffer(raw, plain[info["dtype"]])
            else:
                raise CheckpointError(f"{path}: tensor {key} has dtype {info['dtype']}, which albertkit.keras cannot read")
            out[key] = value.reshape(info["shape"]).copy()
    return out


def load_pretrained(cls: type, name_or_path: str | os.PathLike, *, config: AlbertConfig | None = None, **config_overrides: Any) -> Any:
    """Build ``cls`` (a Keras ALBERT class) from a folder or hub name holding config.json and weights."""
    if config is None:
        config = AlbertConfig.from_json_file(resolve_file(name_or_path, CONFIG_NAME))
    config = config.with_overrides(config_overrides)
    weights = resolve_first(name_or_path, (SAFE_WEIGHTS_NAME, WEIGHTS_NAME))
    state = read_weights(weights)
    model = cls(config).build_weights()
    targets = hf_variables(model)
    heads = model.head_prefixes
    state, dropped = adapt_keys(
        state,
        prefix=model.base_model_prefix + ".",
        is_base=model.backbone is model,
        has_pooler=model.backbone.pooler is not None,
        head_prefixes=heads,
    )
    missing = sorted(targets.keys() - state.keys())
    new_head = [k for k in missing if is_head_key(k, heads)]
    error = fit_error(weights, cls.__name__, [k for k in missing if not is_head_key(k, heads)], state.keys() - targets.keys())
    if error is not None:
        raise error
    shape_errors = []
    for key, value in state.items():
        variable, transposed = targets[key]
        want = tuple(variable.shape)[::-1] if transposed else tuple(variable.shape)
        if tuple(value.shape) != want:
            shape_errors.append(f"{key}: checkpoint {tuple(value.shape)} vs model {want}")
    if shape_errors:
        raise CheckpointError(f"{weights} does not fit {cls.__name__} ({len(shape_errors)} shape mismatch(es)): " + "; ".join(shape_errors[:10]))
    for key, value in state.items():
        variable, transposed = targets[key]
        variable.assign(np.ascontiguousarray(value.T if transposed else value).astype(variable.dtype))
    if dropped:
        logger.debug("%s: dropped %d head weight(s) not used by %s", weights, len(dropped), cls.__name__)
    if new_head:
        logger.warning("%s: newly initialised weights of %s (train them before use): %s", weights, cls.__name__, ", ".join(new_head))
    model.loading_info = {"new_weights": new_head, "dropped_weights": dropped}
    return model


def save_pretrained(model: Any, folder: str | os.PathLike) -> Path:
    """Write config.json + model.safetensors (PyTorch key layout) into ``folder`` atomically.

    Other files already in the folder (a tokenizer) are kept; a stale pytorch_model.bin is removed.
    """
    from safetensors.numpy import save_file

    folder = Path(folder)
    if not model.built:
        model.build_weights()
    state = {}
    for key, (variable, transposed) in hf_variables(model).items():
        value = keras.ops.convert_to_numpy(variable)
        state[key] = np.ascontiguousarray(value.T if transposed else value)
    data = model.config.to_dict()
    data["architectures"] = [type(model).__name__]
    data["model_type"] = "albert"
    data["torch_dtype"] = str(next(iter(state.values())).dtype)
    with atomic_folder(folder, exclude={WEIGHTS_NAME}) as tmp:
        (tmp / CONFIG_NAME).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        # "pt": the PyTorch key layout, which is what transformers and albertkit.checkpoint read.
        save_file(state, str(tmp / SAFE_WEIGHTS_NAME), metadata={"format": "pt"})
        ordinary_permissions(tmp / SAFE_WEIGHTS_NAME)
    return folder
