"""Shared test fixtures: where ../shared/data lives, tiny configs, determinism."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# OpenMP workers spin while they wait; when more threads than cores compete (CI's 2 cores, tests
# that start subprocesses), every small op then pays a scheduler slice. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ALBERTKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
SPIECE = SHARED_DATA / "albert-base-v2" / "spiece.model"


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


@pytest.fixture
def tiny_config():
    from albertkit import AlbertConfig

    return AlbertConfig.from_name("tiny")
