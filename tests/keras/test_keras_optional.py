"""The tf extra stays optional: the core package and its CLI import neither keras nor tensorflow.

Runs with or without the extra installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_core_and_cli_do_not_import_keras_or_tensorflow():
    code = (
        "import sys, albertkit, albertkit.modeling, albertkit.checkpoint, albertkit.tokenization, albertkit.keras\n"
        "from albertkit.cli import build_parser\n"
        "build_parser().parse_args(['export', 'savedmodel', 'm', 'o'])\n"
        "bad = sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
