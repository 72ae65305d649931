"""Hugging Face layout checkpoints: load, save, and the key policy between them.

The state-dict keys of albertkit modules are Hugging Face's, so loading is ``load_state_dict`` after
this short list of allowed key edits, and nothing else:

1. ``albert.`` prefix: a base-model checkpoint (keys ``embeddings...``) loads into a task model and
   a task checkpoint (keys ``albert.embeddings...``) into the base model.
2. The legacy buffer ``albert.embeddings.position_ids`` is dropped.
3. The tied ``predictions.decoder.weight`` / ``predictions.decoder.bias`` are dropped on load (they
   are the word embeddings and ``predictions.bias``) and not written on save, as Hugging Face does.
4. Heads the model does not have are dropped (logged), as Hugging Face does: loading into the base
   model drops every head of a task checkpoint, a task model drops the other heads of the
   checkpoint (a pretraining checkpoint's MLM and SOP heads when fine-tuning a classifier), and a
   class without a pooler (masked LM, token classification, QA) drops the checkpoint's pooler.
5. A task model whose head is absent from the checkpoint initialises it and logs which weights
   are new (fine-tuning from a base checkpoint). The pooler counts as head for classes that need it.

Anything else missing or unexpected raises :class:`CheckpointError` listing the keys.

    >>> model = AlbertForSequenceClassification.from_pretrained("path/to/albert-base-v2", num_labels=3)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, TypeVar

import torch

from albertkit.config import CONFIG_NAME, AlbertConfig
from albertkit.cpu import warn_bf16_slow
from albertkit.hub import ModelNotFoundError, resolve_file, resolve_first
from albertkit.layout import HEAD_PREFIXES_ALL, SAFE_WEIGHTS_NAME, TIED_KEYS, WEIGHTS_NAME, CheckpointError
from albertkit.utils import atomic_folder, ordinary_permissions

__all__ = [
    "CheckpointError",
    "checkpoint_keys",
    "load_pretrained",
    "save_pretrained",
    "load_state_dict_file",
    "require_trained_head",
    "resolve_device",
    "resolve_dtype",
]

logger = logging.getLogger(__name__)


M = TypeVar("M", bound="torch.nn.Module")


def _read_error(path: Path, exc: Exception) -> CheckpointError:
    """One line saying why ``path`` could not be read, without torch's advice to unpickle unsafely."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "weights_only" in text:
        # Name what the pickle asks for; torch's own text invites weights_only=False, i.e. running it.
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            detail = f"it would call {found.group(1)}"
        else:
            found = re.search(r"(Unsupported [^\n.]*)", text)
            detail = f"its pickle is not plain tensors: {found.group(1).strip()}" if found else "its pickle is not plain tensors"
        return CheckpointError(
            f"{path}: refused: not a plain weights file ({detail}); albertkit loads only tensors and never runs "
            f"code from a checkpoint"
        )
    first = " ".join(text.split())[:200]
    return CheckpointError(f"{path}: cannot read weights, the file is corrupt or truncated ({type(exc).__name__}: {first})")


def _torch_load(path: Path, **kwargs: Any) -> Any:
    with warnings.catch_warnings():  # "Detected pickle protocol N": noise next to our own error
        warnings.simplefilter("ignore", UserWarning)
        return torch.load(str(path), weights_only=True, **kwargs)


def checkpoint_keys(path: str | os.PathLike) -> list[str]:
    """Parameter names stored in a weights file, without loading the tensors.

        >>> checkpoint_keys("my-albert/model.safetensors")[:1]  # doctest: +SKIP
        ['albert.embeddings.word_embeddings.weight']
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                return list(fh.keys())
        try:
            state = _torch_load(path, map_location="meta", mmap=True)
        except RuntimeError as exc:  # legacy (non-zip) torch.save files cannot be memory-mapped
            if "mmap" not in str(exc):
                raise
            state = _torch_load(path, map_location="meta")
    except Exception as exc:
        raise _read_error(path, exc) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return list(state)


def require_trained_head(model: torch.nn.Module, name: str | os.PathLike, purpose: str) -> None:
    """Refuse a model whose task head was just initialised at random by :func:`load_pretrained`.

    Scoring or exporting such a head gives numbers that mean nothing (accuracy near chance).
    """
    new = getattr(model, "loading_info", {}).get("new_weights") or []
    if new:
        raise CheckpointError(
            f"{name} has no trained {type(model).__name__} head (no {', '.join(sorted(new)[:4])} weights), so "
            f"{purpose} would use random weights; fine-tune it first (albertkit finetune) or pass a fine-tuned model"
        )


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """``"bf16"`` / ``"bfloat16"`` / ``torch.bfloat16`` -> ``torch.bfloat16``; ``"auto"`` and None -> None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    key = str(dtype).replace("torch.", "").lower()
    if key == "auto":
        return None
    if key not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of float32, bfloat16, float16")
    return _DTYPES[key]


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``"cuda:1"`` -> ``torch.device("cuda", 1)``, checked to exist here; None -> cuda if available, else cpu.

    A device this torch build or machine lacks is a ValueError naming it, instead of a failure
    deep inside the first ``.to()``.

        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available() else torch.device("cpu")
    if isinstance(device, torch.device):
        dev = device
    else:
        try:
            dev = torch.device(str(device).strip())
        except (RuntimeError, ValueError):
            raise ValueError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device {str(device)!r} is not available: {why}; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r} is not available: {torch.cuda.device_count()} CUDA GPU(s) visible")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {str(device)!r} is not available on this machine; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):  # meta, xla...: nothing albertkit can compute on
        raise ValueError(f"device {str(device)!r} is not supported; use cpu, cuda, cuda:N or mps")
    return dev


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read ``model.safetensors`` or ``pytorch_model.bin`` (with ``weights_only=True``: no code runs)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = _torch_load(path, map_location="cpu")
    except Exception as exc:  # corrupt, truncated, or a pickle that would run code
        raise _read_error(path, exc) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def _adapt_keys(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Apply the key policy; returns the adapted dict and the head keys dropped (policy 4)."""
    from albertkit.modeling import AlbertModel

    prefix = getattr(model, "base_model_prefix", "albert") + "."
    is_base = isinstance(model, AlbertModel)
    out: dict[str, torch.Tensor] = {}
    dropped_heads: list[str] = []
    has_prefix = any(k.startswith(prefix) for k in state)
    has_pooler = getattr(model, "backbone", model).pooler is not None
    for key, value in state.items():
        if key.endswith("embeddings.position_ids") or key in TIED_KEYS:
            continue  # policies 2 and 3
        if not has_pooler and (key.startswith(("pooler.", prefix + "pooler."))):
            dropped_heads.append(key)  # policy 4
            continue
        if is_base:
            if key.startswith(prefix):
                key = key[len(prefix) :]
            elif has_prefix:  # a head of a task checkpoint
                dropped_heads.append(key)
                continue
        elif key.startswith(HEAD_PREFIXES_ALL):
            if not key.startswith(tuple(getattr(model, "head_prefixes", ()))):
                dropped_heads.append(key)  # another class's head
                continue
        elif not key.startswith(prefix):
            key = prefix + key  # base checkpoint into a task model
        out[key] = value
    return out, dropped_heads


def _expected_keys(model: torch.nn.Module) -> set[str]:
    keys = set(model.state_dict().keys())
    return {k for k in keys if k not in TIED_KEYS}


def _is_head_key(model: torch.nn.Module, key: str) -> bool:
    heads = tuple(getattr(model, "head_prefixes", ()))
    if key.startswith(heads):
        return True
    # A pooler is new when a checkpoint without one (AlbertForMaskedLM, QA...) loads into a class with one.
    return key.endswith("pooler.weight") or key.endswith("pooler.bias")


def load_pretrained(
    cls: type[M],
    name_or_path: str | os.PathLike,
    *,
    config: AlbertConfig | None = None,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    quantize: str | None = None,
    **config_overrides: Any,
) -> M:
    """Build ``cls`` from a folder / hub name holding config.json and weights (see module doc).

    ``quantize="int8"`` applies :func:`albertkit.fast.quantize_int8` (dynamic int8 Linear layers).
    """
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r} (bf16: pass dtype='bfloat16')")
    if config is None:
        config = AlbertConfig.from_json_file(resolve_file(name_or_path, CONFIG_NAME))
    if config_overrides:
        data = config.to_dict()
        data.update(config_overrides)
        if "num_labels" in config_overrides and "id2label" not in config_overrides:
            data.pop("id2label", None)
            data.pop("label2id", None)
        config = AlbertConfig.from_dict(data)
    try:
        weights = resolve_first(name_or_path, (SAFE_WEIGHTS_NAME, WEIGHTS_NAME))
    except ModelNotFoundError:
        raise
    state = load_state_dict_file(weights)
    target_dtype = resolve_dtype(dtype)
    if target_dtype is None and config.torch_dtype in ("bfloat16", "float16") and dtype == "auto":
        target_dtype = resolve_dtype(config.torch_dtype)

    with torch.device("meta"):
        model = cls(config)  # type: ignore[call-arg]
    state, dropped = _adapt_keys(model, state, str(weights))
    expected = _expected_keys(model)
    missing = sorted(expected - state.keys())
    unexpected = sorted(state.keys() - expected)
    new_head = [k for k in missing if _is_head_key(model, k)]
    missing = [k for k in missing if not _is_head_key(model, k)]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} weight(s): {', '.join(missing[:20])}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} weight(s): {', '.join(unexpected[:20])}")
        raise CheckpointError(f"{weights} does not fit {cls.__name__}: " + "; ".join(parts))
    shape_errors = []
    model_state = model.state_dict()
    for key, value in state.items():
        if tuple(model_state[key].shape) != tuple(value.shape):
            shape_errors.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(model_state[key].shape)}")
    if shape_errors:
        raise CheckpointError(
            f"{weights} does not fit {cls.__name__} as its config.json describes it ({len(shape_errors)} shape "
            f"mismatch(es); was config.json edited or taken from another model?): " + "; ".join(shape_errors[:10])
        )

    # Materialise: real (initialised) tensors for new heads, checkpoint tensors for the rest.
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        model.init_weights()
    model.load_state_dict(state, strict=False)  # strictness enforced above, with better messages
    model.tie_weights()
    if dropped:
        logger.debug("%s: dropped %d head weight(s) not used by %s", weights, len(dropped), cls.__name__)
    if new_head:
        logger.warning(
            "%s: newly initialised weights of %s (train them before use): %s", weights, cls.__name__, ", ".join(new_head)
        )
    model.eval()
    if target_dtype is not None:
        model = model.to(dtype=target_dtype)
        if target_dtype == torch.bfloat16 and torch.device(device or "cpu").type == "cpu":
            warn_bf16_slow()  # correct everywhere, slower than fp32 without native bf16
    if device is not None:
        model = model.to(resolve_device(device))
    if quantize == "int8":
        from albertkit.fast import quantize_int8

        model = quantize_int8(model, inplace=True)
    model.loading_info = {"new_weights": new_head, "dropped_weights": dropped}  # type: ignore[attr-defined]
    return model


def _state_for_saving(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in model.state_dict().items():
        if key in TIED_KEYS:
            continue
        out[key] = value.detach().to("cpu").contiguous()
    return out


def save_pretrained(
    model: torch.nn.Module,
    folder: str | os.PathLike,
    *,
    safe_serialization: bool = True,
    extra_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write config.json + model.safetensors (or pytorch_model.bin) into ``folder`` atomically.

    The folder is built beside the target and swapped in whole, so a crash mid-save never leaves a
    half-written folder that loads; other files already in the folder (a tokenizer) are kept.
    ``extra_state``: tensors stored beside the model's, which policy 4 lets a loader drop (the
    pooler of a converted masked-LM checkpoint, kept for fine-tuning, as the hub's albert-base-v2 does).
    """
    folder = Path(folder)
    config: AlbertConfig = model.config  # type: ignore[assignment]
    data = config.to_dict()
    data["architectures"] = [type(model).__name__]
    data["model_type"] = "albert"
    data["torch_dtype"] = str(next(model.parameters()).dtype).replace("torch.", "")
    state = _state_for_saving(model)
    for key, value in (extra_state or {}).items():
        if key in state:
            raise CheckpointError(f"extra_state key {key} is already a parameter of {type(model).__name__}")
        state[key] = value.detach().to("cpu").contiguous()
    # An older weights file of the other format must not survive to shadow the new one.
    stale = WEIGHTS_NAME if safe_serialization else SAFE_WEIGHTS_NAME
    with atomic_folder(folder, exclude={stale}) as tmp:
        (tmp / CONFIG_NAME).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if safe_serialization:
            from safetensors.torch import save_file

            save_file(state, str(tmp / SAFE_WEIGHTS_NAME), metadata={"format": "pt"})
            ordinary_permissions(tmp / SAFE_WEIGHTS_NAME)  # safetensors writes 0600
        else:
            torch.save(state, tmp / WEIGHTS_NAME)
    return folder
