"""The pipeline subcommands run for real in subprocesses; JSON checked against the transformers pipeline
on the same checkpoint, or against the Python API.

A process start costs an import of torch (1-2 s, far more on a busy machine), so a few checks run
``python -m albertkit`` itself (exit status, stdout, stderr of a real process) and the rest go through
one subprocess that calls ``albertkit.cli.main`` once per command line - argument parsing, input
reading, handlers, JSON writing and error reporting exactly as the real command, stdout/stderr
captured per command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from test_pipelines_common import NER_LABELS, assert_close, hf_checkpoint, hf_pipeline

ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

# Runs [[argv, stdin], ...] from stdin through albertkit.cli.main; prints one JSON result per command.
HARNESS = r"""
import contextlib, io, json, logging, sys, traceback
from albertkit.cli import main
commands = json.load(sys.stdin)
results = []
for argv, stdin in commands:
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    for handler in root.handlers[:]:  # main() configures logging onto the current (captured) stderr
        root.removeHandler(handler)
    sys.stdin = io.StringIO(stdin or "")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            code, _ = "uncaught", err.write(traceback.format_exc())
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
sys.__stdout__.write(json.dumps(results))
"""


def run(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **ENV, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "albertkit", *args], input=stdin, capture_output=True, text=True, env=full_env, timeout=120
    )


def run_many(commands: list[tuple[list[str], str | None]]) -> list[dict]:
    """Each (argv, stdin) through ``albertkit.cli.main`` in one fresh subprocess -> code/stdout/stderr."""
    out = subprocess.run(
        [sys.executable, "-c", HARNESS], input=json.dumps(commands), capture_output=True, text=True,
        env={**os.environ, **ENV}, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert len(results) == len(commands)
    return results


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory, spiece_path):
    base = tmp_path_factory.mktemp("cli")
    return {
        "mlm": hf_checkpoint(base / "mlm", spiece_path, "ForMaskedLM"),
        "cls": hf_checkpoint(base / "cls", spiece_path, "ForSequenceClassification", seed=2),
        "tok": hf_checkpoint(base / "tok", spiece_path, "ForTokenClassification", seed=3, id2label=dict(enumerate(NER_LABELS))),
        "qa": hf_checkpoint(base / "qa", spiece_path, "ForQuestionAnswering", seed=5),
    }


MASK_TEXTS = ["Paris is the [MASK] of France.", "A [MASK] barks at the [MASK].", "The [MASK] is blue."]
CLASSIFY_ROWS = [{"text": "A gripping film."}, {"text": "A man plays.", "text_pair": "Someone plays."}]
QA_CONTEXT = "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy."


@pytest.fixture(scope="module")
def cli(ckpts, tmp_path_factory):
    """All in-harness command lines, run once; results by name (plus the files they wrote)."""
    tmp = tmp_path_factory.mktemp("cli_io")
    (tmp / "in.jsonl").write_text("\n".join(json.dumps(r) for r in CLASSIFY_ROWS) + "\n")
    (tmp / "bad.jsonl").write_text('{"text": "a [MASK]"}\n{oops\n')
    m = {k: str(v) for k, v in ckpts.items()}
    commands = {
        "fill_stdin": (["fill-mask", "--model", m["mlm"], "--format", "jsonl", "--batch-size", "2", "-o",
                        str(tmp / "out.jsonl"), "--device", "cpu"], "\n".join(MASK_TEXTS) + "\n"),
        "classify": (["classify", "--input", str(tmp / "in.jsonl"), "--model", m["cls"], "--all-scores"], None),
        "ner": (["ner", "My name is Sarah and I live in London.", "--model", m["tok"], "--aggregation", "first"], None),
        "embed": (["embed", "one text", "another text", "--model", m["mlm"], "--normalize", "--pooling", "max"], None),
        "features": (["features", "Hello world", "--model", m["mlm"]], None),
        "qa": (["qa", "--question", "Who gave their name to Normandy?", "--context", QA_CONTEXT, "--model", m["qa"],
                "--top-k", "2"], None),
        "err_head": (["fill-mask", "a [MASK]", "--model", m["cls"]], None),
        "err_jsonl": (["fill-mask", "--input", str(tmp / "bad.jsonl"), "--model", m["mlm"]], None),
    }
    results = run_many(list(commands.values()))
    return dict(zip(commands, results)), tmp


def test_fill_mask_argument_matches_transformers(ckpts):
    out = run("fill-mask", "Hello I'm a [MASK] model.", "--model", str(ckpts["mlm"]), "--top-k", "3")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = hf_pipeline("fill-mask", ckpts["mlm"])("Hello I'm a [MASK] model.", top_k=3)
    assert [(c["token"], c["token_str"], c["sequence"]) for c in got] == [
        (c["token"], c["token_str"], c["sequence"]) for c in want
    ]
    for a, b in zip(got, want):
        assert_close(a["score"], b["score"])


def test_fill_mask_stdin_jsonl_output_file(cli, ckpts):
    results, tmp = cli
    out = results["fill_stdin"]
    assert out["code"] == 0, out["stderr"]
    lines = [json.loads(x) for x in (tmp / "out.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and len(lines[0]) == 5 and len(lines[1]) == 2  # two masks -> two lists

    from albertkit import pipeline

    api = pipeline("fill-mask", model=ckpts["mlm"])(MASK_TEXTS)
    assert [[c["token"] for c in r] for r in (lines[0], lines[2])] == [[c["token"] for c in r] for r in (api[0], api[2])]
    assert [[c["token"] for c in m] for m in lines[1]] == [[c["token"] for c in m] for m in api[1]]


def test_fill_mask_errors_are_one_line(cli, ckpts):
    # A real process: exit status 2, the message on stderr, no traceback.
    out = run("fill-mask", "no mask here", "--model", str(ckpts["mlm"]))
    assert out.returncode == 2
    assert "no mask token" in out.stderr and "no mask here" in out.stderr and "Traceback" not in out.stderr
    results, _ = cli
    err = results["err_head"]
    assert err["code"] == 2 and "masked-language-model head" in err["stderr"] and "Traceback" not in err["stderr"]
    err = results["err_jsonl"]
    assert err["code"] == 2 and "line 2" in err["stderr"] and "Traceback" not in err["stderr"]


def test_default_model_fallback_message(tmp_path):
    # No albert-base-v2 in an empty cache, offline: the shipped model answers, and stderr says so.
    out = run("fill-mask", "a [MASK]", env={"HF_HOME": str(tmp_path), "HF_HUB_CACHE": str(tmp_path / "hub")})
    assert out.returncode == 0, out.stderr
    assert "albert-mini-en" in out.stderr and "albert-base-v2" in out.stderr
    result = json.loads(out.stdout)
    assert len(result) == 5 and all(r["sequence"].startswith("a") for r in result)


def test_no_default_and_no_shipped_model_is_one_clear_error(tmp_path, monkeypatch):
    import albertkit.hub
    from albertkit.pipelines.base import resolve_model

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(albertkit.hub, "shipped_model_path", lambda name: None)
    with pytest.raises(Exception) as info:
        resolve_model(None)
    message = str(info.value)
    assert "albert-base-v2" in message and "albert-mini-en" in message and "\n" not in message


def test_classify_and_pairs(cli, ckpts):
    out = cli[0]["classify"]
    assert out["code"] == 0, out["stderr"]
    got = json.loads(out["stdout"])
    ref = hf_pipeline("text-classification", ckpts["cls"])
    assert len(got) == len(CLASSIFY_ROWS)
    for row, result in zip(CLASSIFY_ROWS, got):
        want = ref(row if "text_pair" in row else row["text"], top_k=None)
        assert [d["label"] for d in result] == [d["label"] for d in want]
        for a, b in zip(result, want):
            assert_close(a["score"], b["score"])


def test_ner_embed_features_qa(cli, ckpts):
    from albertkit import pipeline

    results, _ = cli
    for name in ("ner", "embed", "features", "qa"):
        assert results[name]["code"] == 0, results[name]["stderr"]
    ents = json.loads(results["ner"]["stdout"])
    assert all({"entity_group", "score", "word", "start", "end"} == set(e) for e in ents)
    api = pipeline("ner", model=ckpts["tok"], aggregation_strategy="first")("My name is Sarah and I live in London.")
    assert [(e["entity_group"], e["start"], e["end"]) for e in ents] == [(e["entity_group"], e["start"], e["end"]) for e in api]

    vecs = json.loads(results["embed"]["stdout"])
    assert len(vecs) == 2 and all(abs(sum(x * x for x in v) - 1) < 1e-5 for v in vecs)

    feats = json.loads(results["features"]["stdout"])
    assert len(feats) == 1 and len(feats[0]) == 4 and len(feats[0][0]) == 16  # [1, T, H]

    answers = json.loads(results["qa"]["stdout"])
    assert len(answers) == 2
    for a in answers:
        assert QA_CONTEXT[a["start"] : a["end"]] == a["answer"]
