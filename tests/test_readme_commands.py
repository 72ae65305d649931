"""The README's "runs in minutes" block, run as written (slow: about 10-20 minutes on 2 cores).

    python -m pytest -q -m slow tests/test_readme_commands.py

Each line runs in a fresh process from a scratch folder laid out like the repository root
(``docs/`` and ``../shared/data`` reachable as the README says), offline, in order: later lines use
the models earlier ones wrote.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_block() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## What runs out of the box", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_the_block_covers_every_subcommand_but_serve_and_multiple_choice():
    used = {shlex.split(line)[1] for line in readme_block()}
    assert used >= {"fill-mask", "embed", "features", "tokenize", "train-tokenizer", "pretrain", "evaluate-pretraining",
                    "finetune", "classify", "evaluate", "ner", "qa", "export"}


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path, shared_data):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "docs").symlink_to(REPO / "docs")
    (tmp_path / "shared").symlink_to(shared_data.parent)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    for line in readme_block():
        argv = shlex.split(line)
        assert argv[0] == "albertkit"
        out = subprocess.run([sys.executable, "-m", "albertkit", *argv[1:]], cwd=root, env=env, capture_output=True,
                             text=True, timeout=1800)
        assert out.returncode == 0, f"{line}\n{out.stderr[-2000:]}"
