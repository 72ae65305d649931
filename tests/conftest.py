"""Shared test fixtures: where ../shared/data lives, tiny configs, determinism, outside references."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

# OpenMP workers spin while they wait; when more threads than cores compete (CI's 2 cores, tests
# that start subprocesses), every small op then pays a scheduler slice. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ALBERTKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
SPIECE = SHARED_DATA / "albert-base-v2" / "spiece.model"


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_reference(module: str, why: str = "") -> ModuleType:
    """Import an outside reference (transformers, onnxruntime, scipy, sklearn...) a test checks against.

    Missing, it skips the test on a developer's machine but FAILS under ``CI=true``: CI installs the
    ``test`` and ``onnx`` extras, so a missing reference there is a broken setup, and a suite that
    skips its references would pass without checking anything. Every test imports its references
    through this one function (never ``pytest.importorskip``).

        >>> transformers = require_reference("transformers")          # doctest: +SKIP
        >>> stats = require_reference("scipy.stats", "Pearson/Spearman")  # doctest: +SKIP
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = f"reference {module!r}{f' ({why})' if why else ''} is not installed: {exc}; pip install -e '.[test,onnx]'"
        if _on_ci():
            pytest.fail(f"CI=true: {hint}", pytrace=False)
        pytest.skip(hint, allow_module_level=True)


def pytest_configure(config: pytest.Config) -> None:
    # Two cores on CI; keep torch from oversubscribing when tests run in subprocesses too.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA} (set ALBERTKIT_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def spiece_path(shared_data: Path) -> Path:
    return SPIECE


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, spiece_path):
    """A tiny random AlbertModel (albert-base-v2's vocabulary, 512 positions) with its tokenizer, saved."""
    import dataclasses

    import torch

    from albertkit import AlbertConfig, AlbertModel, AlbertTokenizer

    folder = tmp_path_factory.mktemp("base")
    config = dataclasses.replace(AlbertConfig.from_name("tiny"), vocab_size=30000, max_position_embeddings=512)
    torch.manual_seed(0)
    AlbertModel(config).save_pretrained(str(folder))
    AlbertTokenizer.from_pretrained(spiece_path.parent).save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_config():
    from albertkit import AlbertConfig

    return AlbertConfig.from_name("tiny")
