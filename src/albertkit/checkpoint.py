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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

from albertkit.config import CONFIG_NAME, AlbertConfig
from albertkit.cpu import warn_bf16_slow
from albertkit.hub import resolve_file, resolve_first
from albertkit.layout import (
    SAFE_WEIGHTS_NAME,
    TIED_KEYS,
    TOKENIZER_FILES,
    WEIGHTS_NAME,
    CheckpointError,
    adapt_keys,
    fit_error,
    is_head_key,
)
from albertkit.utils import atomic_folder, ordinary_permissions

__all__ = [
    "CheckpointError",
    "ResolvedCheckpoint",
    "resolve_checkpoint",
    "checkpoint_keys",
    "load_pretrained",
    "save_pretrained",
    "save_weights",
    "load_weights",
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
        description = getattr(model, "head_description", "")
        what = f" for its {description}" if description else ""
        raise CheckpointError(
            f"{name} has no trained {type(model).__name__} head (no {', '.join(sorted(new)[:4])} weights{what}), so "
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


@dataclass
class ResolvedCheckpoint:
    """A model name resolved once (local folder, shipped model, Hugging Face cache or hub) to its
    config and weights file; what :func:`load_pretrained` and the tokenizer of a pipeline both read.

        >>> ckpt = resolve_checkpoint("albert-mini-en")
        >>> ckpt.weights.name, ckpt.config.hidden_size
        ('model.safetensors', 256)
    """

    name: str
    config: AlbertConfig
    weights: Path
    _keys: list[str] | None = field(default=None, repr=False)

    @property
    def folder(self) -> Path:
        """The folder holding the files (for a hub name: its snapshot in the Hugging Face cache)."""
        return self.weights.parent

    @property
    def keys(self) -> list[str]:
        """Parameter names in the weights file, read once without loading the tensors."""
        if self._keys is None:
            self._keys = checkpoint_keys(self.weights)
        return self._keys

    @property
    def tokenizer_source(self) -> str:
        """Where the tokenizer is: this folder when it holds one, else the name (the hub fetches it)."""
        if any((self.folder / fn).is_file() for fn in TOKENIZER_FILES):
            return str(self.folder)
        return self.name

    def __str__(self) -> str:
        return self.name


def resolve_checkpoint(name_or_path: str | os.PathLike | ResolvedCheckpoint) -> ResolvedCheckpoint:
    """Find config.json and the weights of a folder or hub name (each file looked up once)."""
    if isinstance(name_or_path, ResolvedCheckpoint):
        return name_or_path
    config = AlbertConfig.from_json_file(resolve_file(name_or_path, CONFIG_NAME))
    weights = resolve_first(name_or_path, (SAFE_WEIGHTS_NAME, WEIGHTS_NAME))
    return ResolvedCheckpoint(str(name_or_path), config, weights)


def load_pretrained(
    cls: type[M],
    name_or_path: str | os.PathLike | ResolvedCheckpoint,
    *,
    config: AlbertConfig | None = None,
    require_head: bool | str = False,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    **config_overrides: Any,
) -> M:
    """Build ``cls`` from a folder / hub name holding config.json and weights (see module doc).

    The class tells the policy what it is through its attributes (``base_model_prefix``,
    ``head_prefixes``, ``backbone``); nothing here knows the model classes. ``require_head``: refuse
    (:func:`require_trained_head`) a checkpoint without this class's trained head instead of
    initialising one; a string says what the model is for ("running the fill-mask pipeline").
    """
    if config is None or isinstance(name_or_path, ResolvedCheckpoint):
        source = resolve_checkpoint(name_or_path)
        name, weights = source.name, source.weights
        config = config if config is not None else source.config
    else:  # a config given by the caller: only the weights are looked up
        name, weights = str(name_or_path), resolve_first(name_or_path, (SAFE_WEIGHTS_NAME, WEIGHTS_NAME))
    config = config.with_overrides(config_overrides)
    state = load_state_dict_file(weights)
    target_dtype = resolve_dtype(dtype)
    if target_dtype is None and config.torch_dtype in ("bfloat16", "float16") and dtype == "auto":
        target_dtype = resolve_dtype(config.torch_dtype)

    with torch.device("meta"):
        model = cls(config)  # type: ignore[call-arg]
    heads = tuple(getattr(model, "head_prefixes", ()))
    backbone = getattr(model, "backbone", model)
    state, dropped = adapt_keys(
        state,
        prefix=getattr(model, "base_model_prefix", "albert") + ".",
        is_base=backbone is model,
        has_pooler=backbone.pooler is not None,
        head_prefixes=heads,
    )
    expected = {k for k in model.state_dict() if k not in TIED_KEYS}
    missing = sorted(expected - state.keys())
    new_head = [k for k in missing if is_head_key(k, heads)]
    error = fit_error(weights, cls.__name__, [k for k in missing if not is_head_key(k, heads)], state.keys() - expected)
    if error is not None:
        raise error
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
    model.loading_info = {"new_weights": new_head, "dropped_weights": dropped}  # type: ignore[attr-defined]
    if require_head:
        require_trained_head(model, name, require_head if isinstance(require_head, str) else "using it")

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
    quantized = [name for name, m in model.named_modules() if isinstance(m, DynamicLinear)]
    if quantized:
        # int8 packed weights have no place in the transformers format (and no float values to write)
        raise CheckpointError(
            f"{type(model).__name__} has int8-quantized Linears ({quantized[0]}, ...): save the float model "
            "and quantize after loading, from_pretrained(folder, quantize='int8')"
        )
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


def save_weights(model: torch.nn.Module, folder: str | os.PathLike) -> Path:
    """``model.save_pretrained(folder)`` (HF layout), or a bare ``model.safetensors`` for other modules
    (a training checkpoint of any ``nn.Module``), written atomically."""
    folder = Path(folder)
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(folder)
        return folder
    from safetensors.torch import save_file

    with atomic_folder(folder) as tmp:
        # clone: safetensors refuses tensors that share storage (tied weights).
        save_file({k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}, str(tmp / SAFE_WEIGHTS_NAME))
    return folder


def load_weights(model: torch.nn.Module, folder: str | os.PathLike) -> None:
    """Load the weights :func:`save_weights` wrote into ``model`` in place (resuming training).

    Unlike :func:`load_pretrained` no key policy applies: the keys are the model's own; a tied copy
    may be absent, anything else missing or unexpected raises :class:`CheckpointError`.
    """
    folder = Path(folder)
    files = [folder / n for n in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME) if (folder / n).is_file()]
    if not files:
        raise CheckpointError(f"{folder}: no {SAFE_WEIGHTS_NAME} or {WEIGHTS_NAME}")
    state = load_state_dict_file(files[0])
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise CheckpointError(f"{folder}: weights not in this model: {', '.join(result.unexpected_keys[:5])}")
    # A missing key is fine only when it shares storage with a key that was loaded (tied weights).
    own = model.state_dict(keep_vars=True)
    loaded = {own[k].data_ptr() for k in state if k in own}
    missing = [k for k in result.missing_keys if own[k].data_ptr() not in loaded]
    if missing:
        raise CheckpointError(f"{folder}: checkpoint lacks weights {', '.join(missing[:5])}")
