"""The pipeline subcommands run for real (``python -m albertkit ...`` in a subprocess); JSON checked
against the transformers pipeline on the same checkpoint, or against the Python API."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from test_pipelines_common import NER_LABELS, assert_close, hf_checkpoint, hf_pipeline


def run(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "albertkit", *args], input=stdin, capture_output=True, text=True, env=full_env, timeout=120
    )


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory, spiece_path):
    base = tmp_path_factory.mktemp("cli")
    return {
        "mlm": hf_checkpoint(base / "mlm", spiece_path, "ForMaskedLM"),
        "cls": hf_checkpoint(base / "cls", spiece_path, "ForSequenceClassification", seed=2),
        "tok": hf_checkpoint(base / "tok", spiece_path, "ForTokenClassification", seed=3, id2label=dict(enumerate(NER_LABELS))),
        "qa": hf_checkpoint(base / "qa", spiece_path, "ForQuestionAnswering", seed=5),
    }


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


def test_fill_mask_stdin_jsonl_output_file(ckpts, tmp_path):
    texts = ["Paris is the [MASK] of France.", "A [MASK] barks at the [MASK].", "The [MASK] is blue."]
    target = tmp_path / "out.jsonl"
    out = run("fill-mask", "--model", str(ckpts["mlm"]), "--format", "jsonl", "--batch-size", "2", "-o", str(target),
              "--device", "cpu", stdin="\n".join(texts) + "\n")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in target.read_text().splitlines()]
    assert len(lines) == 3 and len(lines[0]) == 5 and len(lines[1]) == 2  # two masks -> two lists

    from albertkit import pipeline

    api = pipeline("fill-mask", model=ckpts["mlm"])(texts)
    assert [[c["token"] for c in r] for r in (lines[0], lines[2])] == [[c["token"] for c in r] for r in (api[0], api[2])]


def test_fill_mask_errors_are_one_line(ckpts, tmp_path):
    out = run("fill-mask", "no mask here", "--model", str(ckpts["mlm"]))
    assert out.returncode == 2
    assert "no mask token" in out.stderr and "no mask here" in out.stderr and "Traceback" not in out.stderr
    out = run("fill-mask", "a [MASK]", "--model", str(ckpts["cls"]))
    assert out.returncode == 2 and "masked-language-model head" in out.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a [MASK]"}\n{oops\n')
    out = run("fill-mask", "--input", str(bad), "--model", str(ckpts["mlm"]))
    assert out.returncode == 2 and "line 2" in out.stderr


def test_default_model_fallback_message(tmp_path):
    # No albert-base-v2 in an empty cache, offline: the fallback (shipped model) or a clear one-line error.
    out = run("fill-mask", "a [MASK]", env={"HF_HOME": str(tmp_path), "HF_HUB_CACHE": str(tmp_path / "hub")})
    from albertkit.hub import shipped_model_path

    if shipped_model_path("albert-mini-en") is None:
        assert out.returncode == 2 and "albert-base-v2" in out.stderr and "albert-mini-en" in out.stderr
        assert "Traceback" not in out.stderr
    else:
        assert out.returncode == 0 and "albert-mini-en" in out.stderr


def test_classify_and_pairs(ckpts, tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [{"text": "A gripping film."}, {"text": "A man plays.", "text_pair": "Someone plays."}]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = run("classify", "--input", str(src), "--model", str(ckpts["cls"]), "--all-scores")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    ref = hf_pipeline("text-classification", ckpts["cls"])
    ref.tokenizer.model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    for row, result in zip(rows, got):
        want = ref(row if "text_pair" in row else row["text"], top_k=None)
        assert [d["label"] for d in result] == [d["label"] for d in want]
        for a, b in zip(result, want):
            assert_close(a["score"], b["score"])


def test_ner_embed_features_qa(ckpts):
    out = run("ner", "My name is Sarah and I live in London.", "--model", str(ckpts["tok"]), "--aggregation", "first")
    assert out.returncode == 0, out.stderr
    ents = json.loads(out.stdout)
    assert all({"entity_group", "score", "word", "start", "end"} == set(e) for e in ents)

    out = run("embed", "one text", "another text", "--model", str(ckpts["mlm"]), "--normalize", "--pooling", "max")
    assert out.returncode == 0, out.stderr
    vecs = json.loads(out.stdout)
    assert len(vecs) == 2 and all(abs(sum(x * x for x in v) - 1) < 1e-5 for v in vecs)

    out = run("features", "Hello world", "--model", str(ckpts["mlm"]))
    assert out.returncode == 0, out.stderr
    feats = json.loads(out.stdout)
    assert len(feats) == 1 and len(feats[0]) == 4 and len(feats[0][0]) == 16  # [1, T, H]

    context = "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy."
    out = run("qa", "--question", "Who gave their name to Normandy?", "--context", context,
              "--model", str(ckpts["qa"]), "--top-k", "2")
    assert out.returncode == 0, out.stderr
    answers = json.loads(out.stdout)
    assert len(answers) == 2
    for a in answers:
        assert context[a["start"] : a["end"]] == a["answer"]
