"""sentence-transformers folders: ``modules.json`` + Transformer + Pooling [+ Normalize].

A sentence-transformers model is an HF model folder (the ``Transformer`` module, usually at the
root, ``0_Transformer/`` in old models) plus a recipe: ``sentence_bert_config.json`` (legacy name
``sentence_albert_config.json``; ``max_seq_length``, ``do_lower_case``), ``1_Pooling/config.json``
(``pooling_mode`` in sentence-transformers >= 5, the ``pooling_mode_*_tokens`` booleans before) and
an optional ``Normalize`` module. :func:`read_sentence_transformers` turns that recipe into the
``sentence-embedding`` pipeline's options; :func:`write_sentence_transformers` writes it back.

    >>> spec = read_sentence_transformers("paraphrase-albert-small-v2")  # doctest: +SKIP
    >>> spec.pooling, spec.normalize, spec.max_seq_length  # doctest: +SKIP
    ('mean', False, 100)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MODULES_FILE",
    "POOLING_MODES",
    "SentenceTransformersError",
    "SentenceTransformersSpec",
    "read_sentence_transformers",
    "write_sentence_transformers",
]

MODULES_FILE = "modules.json"
# sentence-transformers' pooling modes, in the order it concatenates them
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
# the Transformer module's config, under every name sentence-transformers has read
_TRANSFORMER_CONFIG_FILES = (
    "sentence_bert_config.json",
    "sentence_albert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)
# module class name (last part of modules.json "type") -> role
_ROLES = {"Transformer": "transformer", "Pooling": "pooling", "Normalize": "normalize"}


class SentenceTransformersError(ValueError):
    """A sentence-transformers folder albertkit cannot run; the message names the file and field."""


@dataclass(frozen=True)
class SentenceTransformersSpec:
    """What a sentence-transformers folder says about computing its embeddings."""

    transformer_path: Path  # the HF model folder (config.json, weights, tokenizer)
    pooling: str  # one of POOLING_MODES, or several joined by "+" (concatenated in that order)
    normalize: bool  # L2-normalise the pooled vector
    max_seq_length: int | None  # inputs are cut to this many tokens (None: the model's limit)
    do_lower_case: bool  # lowercase the text before tokenising


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SentenceTransformersError(f"{path}: cannot read ({exc})") from None


def _pooling_from_config(data: Any, where: Path) -> str:
    if not isinstance(data, dict):
        raise SentenceTransformersError(f"{where}: expected a JSON object")
    if "pooling_mode" in data:
        mode = data["pooling_mode"]
        modes = [mode] if isinstance(mode, str) else mode
        if not isinstance(modes, list) or not modes or not all(isinstance(m, str) for m in modes):
            raise SentenceTransformersError(f"{where}: pooling_mode must be a mode name or a list of them, got {mode!r}")
    else:
        modes = [name for key, name in _LEGACY_POOLING_KEYS.items() if data.get(key)]
        modes = modes or ["mean"]  # sentence-transformers' default when no flag is set
    for m in modes:
        if m not in POOLING_MODES:
            raise SentenceTransformersError(f"{where}: pooling mode {m!r} is not one of {', '.join(POOLING_MODES)}")
    if data.get("include_prompt") is False:
        raise SentenceTransformersError(f"{where}: include_prompt=false (prompts excluded from pooling) is not supported")
    return "+".join(modes)


def read_sentence_transformers(folder: str | os.PathLike) -> SentenceTransformersSpec | None:
    """The recipe of a sentence-transformers folder, or None when ``folder`` has no ``modules.json``.

    Modules other than Transformer, Pooling and Normalize (Dense, LayerNorm...) raise
    :class:`SentenceTransformersError` naming the module, since the vectors would differ.
    """
    folder = Path(folder)
    modules_path = folder / MODULES_FILE
    if not modules_path.is_file():
        return None
    modules = _read_json(modules_path)
    if not isinstance(modules, list) or not modules:
        raise SentenceTransformersError(f"{modules_path}: expected a non-empty JSON list of modules")
    found: dict[str, Path] = {}
    order = []
    for n, mod in enumerate(sorted(modules, key=lambda m: m.get("idx", 0) if isinstance(m, dict) else 0)):
        if not isinstance(mod, dict) or not isinstance(mod.get("type"), str) or not isinstance(mod.get("path", ""), str):
            raise SentenceTransformersError(f"{modules_path}: module {n} needs a string 'type' and 'path'")
        cls = mod["type"].rsplit(".", 1)[-1]
        role = _ROLES.get(cls)
        if role is None:
            raise SentenceTransformersError(
                f"{modules_path}: module {mod.get('name', n)!r} is a {mod['type']}; albertkit runs Transformer, Pooling and Normalize only"
            )
        if role in found:
            raise SentenceTransformersError(f"{modules_path}: more than one {cls} module")
        found[role] = folder / mod.get("path", "")
        order.append(role)
    expected = ["transformer", "pooling", "normalize"][: len(order)]
    if order != expected or "pooling" not in found:
        raise SentenceTransformersError(f"{modules_path}: expected Transformer, Pooling[, Normalize] in that order, got {order}")

    transformer = found["transformer"]
    max_seq_length: int | None = None
    do_lower_case = False
    for name in _TRANSFORMER_CONFIG_FILES:
        if (transformer / name).is_file():
            cfg = _read_json(transformer / name)
            if not isinstance(cfg, dict):
                raise SentenceTransformersError(f"{transformer / name}: expected a JSON object")
            if cfg.get("max_seq_length") is not None:
                value = cfg["max_seq_length"]
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise SentenceTransformersError(f"{transformer / name}: max_seq_length must be a positive integer, got {value!r}")
                max_seq_length = value
            if "do_lower_case" in cfg:
                if not isinstance(cfg["do_lower_case"], bool):
                    raise SentenceTransformersError(f"{transformer / name}: do_lower_case must be true or false")
                do_lower_case = cfg["do_lower_case"]
            break
    pooling_cfg = found["pooling"] / "config.json"
    if not pooling_cfg.is_file():
        raise SentenceTransformersError(f"{pooling_cfg}: the Pooling module's config is missing")
    pooling = _pooling_from_config(_read_json(pooling_cfg), pooling_cfg)
    return SentenceTransformersSpec(transformer, pooling, "normalize" in found, max_seq_length, do_lower_case)


def write_sentence_transformers(
    folder: str | os.PathLike,
    *,
    hidden_size: int,
    pooling: str,
    normalize: bool,
    max_seq_length: int,
    do_lower_case: bool = False,
) -> list[Path]:
    """Write the recipe files of a sentence-transformers folder whose Transformer is ``folder`` itself
    (the HF model and tokenizer are saved there by the caller).
    """
    from albertkit.utils import atomic_write_text

    folder = Path(folder)
    modes = pooling.split("+")
    for m in modes:
        if m not in POOLING_MODES:
            raise ValueError(f"pooling mode {m!r} is not one of {', '.join(POOLING_MODES)}")
    # The module names and config keys every sentence-transformers release reads (2.x wrote them;
    # 6.x maps them to its own silently), so the folder loads in old and new versions alike.
    modules: list[dict[str, Any]] = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    pooling_cfg: dict[str, Any] = {"word_embedding_dimension": int(hidden_size)}
    if modes == [m for m in POOLING_MODES if m in modes]:  # the legacy flags concatenate in this order only
        pooling_cfg.update({key: name in modes for key, name in _LEGACY_POOLING_KEYS.items()})
    else:
        pooling_cfg["pooling_mode"] = modes
    files = {
        folder / MODULES_FILE: modules,
        folder / "sentence_bert_config.json": {"max_seq_length": int(max_seq_length), "do_lower_case": bool(do_lower_case)},
        folder / "1_Pooling" / "config.json": pooling_cfg,
    }
    if normalize:
        files[folder / "2_Normalize" / "config.json"] = {}
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return list(files)
