"""Fuzz every subcommand with random and hostile arguments and files (issue 19).

Whatever a command is given - empty, huge, binary, missing or wrongly typed values and files,
corrupt checkpoints, code-running pickles - it must end with exit status 0 (it worked), 2 (one
error line) or 130 (interrupted); never a traceback, never exit 1 (an internal error), and never
write anything outside the output it was told to write.

The default suite runs a seeded sample of ``FUZZ_CASES`` (24) command lines; the slow one runs
300: ``python -m pytest -q -m slow tests/test_cli_fuzz.py`` (``ALBERTKIT_FUZZ_SEED`` picks
another sample).
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
from pathlib import Path

import pytest

from albertkit.cli import build_parser
from test_cli_errors import SHIPPED, broken, cli  # noqa: F401  (broken: the corrupt checkpoints fixture)
from test_pipelines_common import NER_LABELS, hf_checkpoint

FUZZ_CASES = 24
GOOGLE = Path(__file__).parent / "data" / "google"  # Google TF1 checkpoints made by TensorFlow
SEED = int(os.environ.get("ALBERTKIT_FUZZ_SEED", "19"))

TEXTS = ["The [MASK] is blue.", "", "   ", "word " * 10000, "\x00\x01\x02", "[MASK]", "🙂 [MASK] ☃", "-x", "a\nb"]
INTS = ["0", "-1", "1", "2", "abc", "99999999999999999999", "1.5", ""]
FLOATS = ["0", "-1", "nan", "inf", "1e-3", "x", "1e400"]
DEVICES = ["cpu", "foo", "cuda", "cuda:7", "meta"]
DTYPES = ["float32", "bfloat16", "int3", "auto"]


@pytest.fixture(scope="module")
def world(tmp_path_factory, broken, shared_data, spiece_path) -> dict:  # noqa: F811
    """Hostile and ordinary files, all inside one folder whose every change is checked."""
    root = tmp_path_factory.mktemp("fuzz")
    data = root / "data"
    data.mkdir()
    (data / "empty.txt").write_text("")
    (data / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (data / "latin1.txt").write_bytes("Caf\xe9 au lait. Tr\xe8s bien.\n".encode("latin-1"))
    (data / "huge_line.txt").write_text("word " * 60000)
    (data / "good.txt").write_text("The [MASK] is blue.\nParis is the capital of [MASK].\n")
    text = (shared_data / "corpus" / "inaugural" / "1789-Washington.txt").read_text()
    (data / "corpus.txt").write_text(text[:4000])
    (data / "good.jsonl").write_text(json.dumps({"text": "The [MASK] is blue.", "text_pair": "x"}) + "\n")
    (data / "qa.jsonl").write_text(json.dumps({"question": "Who?", "context": "Jane wrote it."}) + "\n")
    (data / "mc.jsonl").write_text(json.dumps({"question": "The sky is", "choices": ["blue.", "a fish."]}) + "\n")
    (data / "bad.jsonl").write_text('{"text": 3}\n{oops\n[1, 2]\n')
    crows = (shared_data / "bias" / "crows_pairs_anonymized.csv").read_text(encoding="utf-8").splitlines()
    (data / "crows.csv").write_text("\n".join(crows[:4]) + "\n", encoding="utf-8")  # header + 3 real pairs
    (data / "config.json").write_text('{"hidden_size": "big"}')
    (data / "folder").mkdir()
    rte = data / "RTE"
    rte.mkdir()
    for split in ("train", "dev"):
        lines = (shared_data / "glue" / "RTE" / f"{split}.tsv").read_text().splitlines()[:9]
        (rte / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    (data / "squad.json").write_text(json.dumps({"data": [{"title": "t", "paragraphs": [
        {"context": "Jane wrote it.", "qas": [{"id": "1", "question": "Who?", "answers": [{"text": "Jane", "answer_start": 0}]}]}]}]}))
    models = root / "models"
    models.mkdir()
    for name in ("truncated", "garbage", "shapes", "pickle", "zip_pickle"):
        shutil.copytree(broken[name], models / name)
    shutil.copytree(SHIPPED, models / "mini")
    # Task heads, made by transformers: the pipelines and evaluate run to the end with these.
    heads = {
        "classify": hf_checkpoint(root / "heads" / "rte", spiece_path, "ForSequenceClassification",
                                  id2label={0: "entailment", 1: "not_entailment"}),
        "ner": hf_checkpoint(root / "heads" / "ner", spiece_path, "ForTokenClassification", id2label=dict(enumerate(NER_LABELS))),
        "qa": hf_checkpoint(root / "heads" / "qa", spiece_path, "ForQuestionAnswering"),
        "multiple-choice": hf_checkpoint(root / "heads" / "mc", spiece_path, "ForMultipleChoice"),
    }
    (models / "empty").mkdir()
    shutil.copy(spiece_path, data / "spiece.model")
    files = [str(p) for p in sorted(data.iterdir())] + [str(data / "missing.txt"), "/dev/null", str(rte / "dev.tsv")]
    model_dirs = [str(p) for p in sorted(models.iterdir())] + [str(data / "good.txt"), "no-such-model", str(data / "spiece.model")]
    return {"root": root, "files": files, "models": model_dirs, "mini": str(models / "mini"), "data": data,
            "heads": {k: str(v) for k, v in heads.items()}}


def _pick(rng: random.Random, options: list, p: float = 1.0) -> list:
    return [rng.choice(options)] if rng.random() < p else []


HOSTILE = 0.12  # chance that one value of a command line is hostile (else an ordinary one)


def _case(rng: random.Random, world: dict, command: str, out: Path) -> tuple[list[str], set[Path]]:
    """One random command line for ``command`` and the paths it may write: mostly ordinary values,
    each one hostile with probability ``HOSTILE``, so that the deep paths run too."""
    files, models, mini, data = world["files"], world["models"], world["mini"], world["data"]
    argv: list[str] = [command]
    allowed = {out}

    def v(ordinary: list, hostile: list) -> str:
        return rng.choice(hostile if rng.random() < HOSTILE else ordinary)

    def opt(flag: str, ordinary: list, hostile: list, p: float = 0.4) -> None:
        if rng.random() < p:
            argv.extend([flag, v(ordinary, hostile)])

    def flag(name: str, p: float = 0.2) -> None:
        if rng.random() < p:
            argv.append(name)

    heads = world["heads"]
    model = v([mini], models)
    if command in heads:
        model = v([heads[command]], models)
    text_file = v([str(data / "good.txt"), str(data / "good.jsonl")], files)
    if command == "multiple-choice":
        argv += ["--model", v([heads["multiple-choice"]], models)]
        if rng.random() < 0.8:
            argv += ["--question", v(["The sky is"], TEXTS)]
            argv += [a for _ in range(rng.choice([0, 1, 2, 2, 3])) for a in ("--choice", v(["blue.", "a fish."], TEXTS))]
        else:
            argv += ["-i", v([str(data / "mc.jsonl")], files)]
        opt("--top-k", ["1", "2"], INTS, 0.3)
        opt("-o", [str(out / "r.json")], [str(data / "folder")], 0.2)
        opt("--batch-size", ["1", "32"], INTS, 0.2)
    elif command in ("fill-mask", "embed", "features", "classify", "ner", "qa"):
        if command != "qa" and rng.random() < 0.7:
            argv += [v(TEXTS[:1] + TEXTS[5:7], TEXTS) for _ in range(rng.randint(1, 2))]
        elif command != "qa":
            argv += ["-i", text_file]
        flag("--jsonl", 0.1)
        opt("-o", [str(out / "r.json")], [str(data / "folder"), str(out / "deep" / "x.json"), ""], 0.3)
        opt("--format", ["json", "jsonl"], ["xml", ""], 0.3)
        argv += ["--model", model]
        opt("--tokenizer", [mini], models, 0.1)
        opt("--device", ["cpu"], DEVICES, 0.2)
        opt("--dtype", ["float32", "bfloat16"], DTYPES, 0.2)
        opt("--batch-size", ["1", "2", "32"], INTS, 0.3)
        opt("--fast", ["bf16", "int8", "fp32"], ["turbo", ""], 0.15)
        flag("--truncate")
        if command == "fill-mask":
            opt("--top-k", ["1", "3"], INTS + ["100000"])
            opt("--targets", ["blue,red"], [",", "zzzzqqq", ""], 0.2)
        elif command == "embed":
            opt("--pooling", ["mean", "cls", "max"], ["sum"])
            flag("--normalize")
        elif command == "classify":
            opt("--top-k", ["1", "2"], INTS, 0.2)
            flag("--all-scores")
            opt("--pair", ["Another text."], TEXTS, 0.2)
            opt("--function", ["softmax", "sigmoid", "none"], ["relu"], 0.2)
        elif command == "ner":
            opt("--aggregation", ["none", "simple", "first", "average", "max"], ["min"])
        elif command == "qa":
            if rng.random() < 0.8:
                argv += ["--question", v(["Who wrote it?"], TEXTS), "--context", v(["Jane wrote it."], TEXTS)]
            else:
                argv += ["-i", v([str(data / "qa.jsonl")], files)]
            for name in ("--top-k", "--max-answer-len", "--doc-stride", "--max-seq-len"):
                opt(name, ["1", "3", "64"], INTS, 0.2)
            flag("--handle-impossible-answer")
    elif command == "tokenize":
        if rng.random() < 0.7:
            argv += [v(TEXTS[:1], TEXTS)]
        else:
            argv += ["-i", text_file]
        opt("--pair", ["A pair."], TEXTS, 0.2)
        argv += ["--model", v([str(data / "spiece.model"), mini], models)]
        opt("--max-length", ["5", "512"], INTS, 0.3)
        flag("--tokens")
        flag("--offsets", 0.1)
        flag("--no-special-tokens")
    elif command == "train-tokenizer":
        argv += [v([str(data / "corpus.txt"), str(data / "good.txt")], files)]
        argv += ["--vocab-size", v(["60", "100"], INTS), "--output", str(out)]
        opt("--max-sentences", ["10", "1000"], INTS, 0.3)
        opt("--fallback-encoding", ["cp1252"], ["no-such-codec"], 0.3)
    elif command == "pretrain":
        argv += [v([str(data / "corpus.txt")], files)]
        argv += ["--tokenizer", v([str(data / "spiece.model")], models)]
        argv += ["--config", v(["tiny"], ["no-such-preset", str(data / "config.json"), mini])]
        argv += ["--output", str(out), "--max-steps", v(["1", "2"], ["0", "-1", "x"])]
        argv += ["--batch-size", v(["2", "4"], ["0", "-2", "x"]), "--num-workers", "0"]
        argv += ["--heldout-docs", v(["1", "0"], INTS), "--eval-instances", v(["2"], ["0", "-1"])]
        opt("--max-seq-length", ["16", "32"], INTS + ["100000"])
        opt("--grad-accumulation", ["1", "2"], INTS, 0.2)
        opt("--lr", ["1e-3"], FLOATS, 0.2)
        opt("--masked-lm-prob", ["0.15"], FLOATS + ["2"], 0.2)
        opt("--fallback-encoding", ["cp1252"], ["no-such-codec"], 0.2)
        opt("--device", ["cpu"], DEVICES, 0.15)
        flag("--resume")
    elif command == "evaluate-pretraining":
        argv += [model, v([str(data / "corpus.txt")], files)]
        argv += ["--max-instances", v(["1", "2"], ["0", "-1", "x"])]
        opt("--max-seq-length", ["16", "64"], INTS + ["100000"])
        opt("--batch-size", ["2"], INTS, 0.3)
        opt("--split", ["heldout", "train"], ["dev"], 0.2)
        opt("--output", [str(out / "m.json")], [str(data / "folder")], 0.3)
        opt("--device", ["cpu"], DEVICES, 0.15)
    elif command in ("finetune", "evaluate"):
        task = v(["rte", "rte", "squad1"], ["sst2", "ner", "imagenet", "classification"])
        if command == "evaluate" and task in ("rte", "squad1"):
            model = v([heads["qa" if task == "squad1" else "classify"]], models)
        argv += [task, "--model", model]
        data_file = v([str(data / "squad.json") if task == "squad1" else str(data / "RTE")], files)
        if command == "finetune":
            argv += ["--train", data_file, "--output", str(out), "--max-steps", v(["1", "2"], ["0", "-1", "x"])]
            opt("--eval", [data_file], files, 0.4)
            opt("--batch-size", ["1", "2"], ["0", "-1", "x"], 0.4)
            opt("--epochs", ["1"], FLOATS, 0.2)
            opt("--lr", ["1e-4"], FLOATS, 0.2)
            opt("--warmup-ratio", ["0.1"], FLOATS, 0.1)
            opt("--max-train-examples", ["1", "4"], ["0", "-1"], 0.3)
            opt("--max-eval-examples", ["1", "4"], ["0", "-1"], 0.3)
            opt("--train-articles", ["0:1"], ["5:2", "x", ":"], 0.1)
        else:
            argv += ["--data", data_file, "--max-examples", v(["1", "4"], ["0", "-1", "x"])]
            opt("--output", [str(out)], [str(data / "folder")], 0.3)
            opt("--batch-size", ["2", "64"], INTS, 0.3)
        opt("--max-seq-length", ["32", "64"], INTS + ["16", "100000"], 0.3)
        opt("--device", ["cpu"], DEVICES, 0.15)
        opt("--tokenizer", [mini], models, 0.1)
    elif command == "bias":
        argv += [v([mini], models)]
        opt("--crows-pairs", [str(data / "crows.csv")], files, 0.5)
        opt("--limit", ["1", "2"], ["0", "-1", "x"], 0.3)
        opt("--top-k", ["1", "3"], INTS, 0.3)
        opt("--output", [str(out / "scores.csv")], [str(data / "folder"), ""], 0.3)
        opt("--summary", [str(out / "bias.json")], [str(data / "folder")], 0.3)
        opt("--templates", [str(data / "good.txt")], files, 0.1)
        opt("--max-tokens", ["512"], INTS, 0.2)
        opt("--fast", ["bf16", "int8"], ["turbo"], 0.1)
        opt("--device", ["cpu"], DEVICES, 0.1)
    elif command == "card":
        argv += [v([mini], models), "--output", v([str(out / "README.md")], [str(data / "folder"), ""])]
        opt("--eval-results", [str(data / "good.jsonl")], files, 0.2)
        opt("--name", ["my model"], TEXTS, 0.2)
    elif command == "convert":
        plain = GOOGLE / "plain"
        argv += ["google", v([str(plain / "model.ckpt-best")], files + [str(plain / "model.ckpt-none")])]
        argv += ["--config", v([str(plain / "albert_config.json")], files), "--output", str(out)]
        opt("--spm", [str(data / "spiece.model")], files, 0.3)
        flag("--no-verify", 0.2)
    elif command == "serve":
        # The server itself is tested in test_serving.py; here uvicorn's run is stubbed (see _run_cases).
        argv += [model, "--port", v(["0"], ["-1", "99999", "x"])]
        opt("--fast", ["fp32", "auto"], ["turbo"], 0.2)
        for name in ("--max-batch-tokens", "--max-concurrent-requests", "--max-client-batch-size", "--payload-limit",
                     "--tokenization-workers"):
            opt(name, ["4", "512"], INTS, 0.15)
        opt("--pooling", ["mean", "cls"], ["sum"], 0.1)
        opt("--device", ["cpu"], DEVICES, 0.1)
    elif command == "export":
        argv += ["onnx", model, v([str(out / "m.onnx")], [str(out / "m.txt"), str(data / "folder")])]
        opt("--task", ["fill-mask", "features", "pretraining"], ["question-answering", "nope"], 0.5)
        opt("--opset", ["14", "17"], ["5", "99", "x"], 0.4)
        flag("--int8", 0.15)
    if rng.random() < 0.03:  # now and then, arguments in a hostile order
        tail = argv[1:]
        rng.shuffle(tail)
        argv[1:] = tail
    # Whatever the command line names as its output may be written (an existing folder included).
    allowed |= {Path(b) for a, b in zip(argv, argv[1:]) if a in ("-o", "--output") and b}
    if command == "export" and len(argv) > 3:
        allowed.add(Path(argv[3]))
    return argv, allowed


def _snapshot(root: Path) -> dict[Path, tuple[int, int]]:
    out = {}
    for path in root.rglob("*"):
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        out[path] = (st.st_size, st.st_mtime_ns) if path.is_file() else (-1, 0)
    return out


def _subcommands() -> list[str]:
    import argparse

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def _run_cases(capsys, monkeypatch, world: dict, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    commands = _subcommands()
    # `serve` would listen until stopped: its argument handling runs, uvicorn's loop does not.
    import uvicorn  # the serve extra is part of the test extra

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    failures = []
    root = world["root"]
    for k in range(count):
        command = commands[k % len(commands)] if k < len(commands) else rng.choice(commands)
        out = root / "outputs" / f"case-{k}"
        argv, allowed = _case(rng, world, command, out)
        stdin = rng.choice(["", "The [MASK] is blue.\n", '{"text": 1}\n', "\x00\x01"])
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        before = _snapshot(root)
        code, stdout, err = cli(capsys, *argv)
        after = _snapshot(root)
        changed = [p for p in after if before.get(p) != after[p] and p != root / "outputs"]
        changed += [p for p in before if p not in after]
        outside = [p for p in changed if not any(p == a or a in p.parents for a in allowed)]
        problems = []
        if code not in (0, 2, 130):
            problems.append(f"exit {code}")
        if "Traceback" in err:
            problems.append("traceback")
        if code == 2 and sum(": error: " in line for line in err.splitlines()) != 1:
            problems.append("not one error line")
        if outside:
            problems.append(f"wrote outside the output: {[str(p) for p in outside[:5]]}")
        if os.environ.get("ALBERTKIT_FUZZ_LOG"):
            with open(os.environ["ALBERTKIT_FUZZ_LOG"], "a") as fh:
                fh.write(json.dumps({"argv": argv, "code": code, "err": err.strip().splitlines()[-1:] }) + "\n")
        if problems:
            failures.append(f"{' '.join(argv)!r}: {', '.join(problems)}; stderr tail: {err[-400:]!r}")
    return failures


def test_every_subcommand_is_fuzzed():
    # The generator knows every registered subcommand (a new one must be added to _case).
    known = {"fill-mask", "embed", "features", "classify", "ner", "qa", "tokenize", "train-tokenizer", "pretrain",
             "evaluate-pretraining", "finetune", "evaluate", "export", "multiple-choice", "bias", "card", "convert",
             "serve"}
    assert set(_subcommands()) <= known


def test_fuzz_sample_of_every_subcommand(capsys, monkeypatch, world):
    failures = _run_cases(capsys, monkeypatch, world, FUZZ_CASES, SEED)
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_fuzz_many(capsys, monkeypatch, world):
    failures = _run_cases(capsys, monkeypatch, world, 300, SEED + 1)
    assert not failures, "\n".join(failures)
