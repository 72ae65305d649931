"""The outside references themselves: pinned, present under CI, never skipped silently.

A parity test is only as good as its reference, so: the installed transformers is the release the
``test`` extra pins; the golden files record the transformers 4 release they were made with; and a
missing reference fails under ``CI=true`` (``require_reference`` in conftest.py) instead of skipping.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

import tokenization_parity_data as D
from conftest import require_reference

TESTS = Path(__file__).resolve().parent
PYPROJECT = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())


def _pin(name: str) -> str:
    found = [r for r in PYPROJECT["project"]["optional-dependencies"]["test"] if re.match(rf"{name}\s*[=<>~!]", r)]
    assert len(found) == 1, f"{name} must appear once in the test extra: {found}"
    return found[0]


def test_missing_reference_fails_under_ci_and_skips_elsewhere(monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: reference 'albertkit_no_such_reference'"):
        require_reference("albertkit_no_such_reference")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"pip install -e '\.\[test,onnx\]'"):
        require_reference("albertkit_no_such_reference")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require_reference("albertkit_no_such_reference")
    assert require_reference("json") is json


def test_no_test_skips_on_a_missing_module_by_itself() -> None:
    # Every reference goes through require_reference, so CI=true turns a missing one into a failure.
    offenders = [
        f"{path.name}:{n}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name not in ("test_references.py", "conftest.py")
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if "importorskip" in line or re.search(r"except (ImportError|ModuleNotFoundError)", line)
    ]
    assert not offenders, f"use conftest.require_reference instead: {offenders}"


def test_transformers_is_the_pinned_release() -> None:
    transformers = require_reference("transformers")
    from packaging.requirements import Requirement  # a dependency of transformers

    pin = Requirement(_pin("transformers"))
    assert str(pin.specifier).startswith("=="), f"the reference must be pinned, not a range: {pin}"
    assert transformers.__version__ in pin.specifier, (
        f"transformers {transformers.__version__} is installed; the parity tests check against {pin} "
        "(pip install -e '.[test]')"
    )


def test_golden_files_record_the_transformers_4_release_that_made_them() -> None:
    tokenizer = json.loads((TESTS / "golden" / "tokenization_slow_hf4.json").read_text())
    assert tokenizer["generator"].startswith(f"transformers {D.GOLDEN_TRANSFORMERS} AlbertTokenizer (slow")
    qa = json.loads((TESTS / "data" / "pipelines_qa_golden.json").read_text())
    assert qa["transformers"] == D.GOLDEN_TRANSFORMERS
    script = (TESTS / "golden" / "make_tokenization_golden.py").read_text()
    assert f"transformers=={D.GOLDEN_TRANSFORMERS}" in script  # the install line its docstring gives
