"""Resolve a model name or path to local files.

A local folder is used as is. A name such as ``albert-base-v2`` or ``albert/albert-base-v2``
goes through :mod:`huggingface_hub`, so its cache and ``HF_HUB_OFFLINE`` are respected. When the
hub cannot be reached and the file is not cached, :class:`ModelNotFoundError` says so at once
(a one-second reachability probe instead of huggingface_hub's retry loop, which can hang for
tens of seconds).

    >>> resolve_file("albert-base-v2", "config.json")  # doctest: +SKIP
    PosixPath('/root/.cache/huggingface/hub/models--albert--albert-base-v2/snapshots/.../config.json')
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["ModelNotFoundError", "resolve_file", "resolve_first", "hub_repo_id", "shipped_model_path"]

logger = logging.getLogger(__name__)

# Short names the hub serves under the "albert/" organisation (the old un-namespaced ids redirect there).
_CANONICAL = {
    f"albert-{size}-v{v}": f"albert/albert-{size}-v{v}" for size in ("base", "large", "xlarge", "xxlarge") for v in (1, 2)
}

# Models that ship inside the package: name -> folder under albertkit/models.
SHIPPED_MODELS = ("albert-mini-en",)


class ModelNotFoundError(OSError):
    """A model or one of its files cannot be found locally, in the cache, or on the hub."""


def hub_repo_id(name: str) -> str:
    return _CANONICAL.get(name, name)


def shipped_model_path(name: str) -> Path | None:
    """The folder of a model that ships inside albertkit, or None."""
    key = name.split("/")[-1]
    if key not in SHIPPED_MODELS:
        return None
    path = Path(__file__).parent / "models" / key
    return path if (path / "config.json").is_file() else None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _hub_reachable(timeout: float = 1.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _not_found(name: str, filename: str, why: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"cannot load {filename!r} of model {name!r}: {why}. "
        f"Pass a local folder holding config.json and model.safetensors, or run once while online "
        f"(`huggingface-cli download {hub_repo_id(name)}`) so that the Hugging Face cache has it."
    )


def resolve_first(name_or_path: str | os.PathLike, filenames: tuple[str, ...] | list[str]) -> Path:
    """The first of ``filenames`` that exists for this model (local folder, shipped model, cache, hub)."""
    path = Path(name_or_path)
    if path.is_dir():
        for fn in filenames:
            if (path / fn).is_file():
                return path / fn
        raise ModelNotFoundError(f"{path}: none of {', '.join(filenames)} found in this folder")
    name = str(name_or_path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelNotFoundError(f"{name}: no such folder")
    shipped = shipped_model_path(name)
    if shipped is not None:
        return resolve_first(shipped, filenames)

    try:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
    except ImportError:  # pragma: no cover - a core dependency
        raise _not_found(name, filenames[0], "huggingface_hub is not installed") from None

    repo_id = hub_repo_id(name)
    for candidate in (repo_id, name) if repo_id != name else (repo_id,):
        for fn in filenames:
            try:
                cached = try_to_load_from_cache(candidate, fn)
            except Exception:  # invalid repo id etc.
                cached = None
            if isinstance(cached, str) and os.path.isfile(cached):
                return Path(cached)
    if _offline():
        raise _not_found(name, filenames[0], "not in the Hugging Face cache and HF_HUB_OFFLINE is set")
    if not _hub_reachable():
        raise _not_found(name, filenames[0], "not in the Hugging Face cache and the hub cannot be reached (offline?)")
    last: Exception | None = None
    for fn in filenames:
        try:
            return Path(hf_hub_download(repo_id, fn, etag_timeout=5))
        except Exception as exc:  # EntryNotFound, RepositoryNotFound, network errors
            last = exc
            continue
    raise _not_found(name, " or ".join(filenames), f"the hub has none of these files ({type(last).__name__})")


def resolve_file(name_or_path: str | os.PathLike, filename: str) -> Path:
    """Path of one file of a model (see :func:`resolve_first`)."""
    return resolve_first(name_or_path, (filename,))
