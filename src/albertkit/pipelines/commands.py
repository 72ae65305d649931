"""Command-line subcommands over the pipelines: fill-mask, embed, features, classify, ner, qa.

Inputs come from the arguments, or from ``--input FILE`` (``-`` = stdin; also stdin when no text is
given and stdin is not a terminal): one text per line, or JSONL when the file ends in ``.jsonl`` or
``--jsonl`` is given (objects with ``text`` [+ ``text_pair``], ``question`` + ``context`` for qa,
``question`` + ``choices`` for multiple-choice).
Output: JSON (one result, or a list for several inputs) or ``--format jsonl`` (one result per line),
to stdout or ``--output FILE`` (written atomically).

    $ albertkit fill-mask "Hello I'm a [MASK] model." --top-k 3
    $ albertkit qa --question "Who?" --context "Jane wrote it."
    $ cat texts.txt | albertkit embed --pooling mean --normalize --format jsonl
    $ albertkit multiple-choice --model my-race --question "The sky is" --choice blue. --choice "a fish."
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from albertkit.layout import FAST_MODES

__all__ = ["register"]


def _common(p: argparse.ArgumentParser, texts: bool = True) -> None:
    if texts:
        p.add_argument("texts", nargs="*", metavar="TEXT", help="input text(s); else --input or stdin")
    p.add_argument("-i", "--input", metavar="FILE", help="read inputs from FILE ('-' = stdin), one per line or JSONL")
    p.add_argument("--jsonl", action="store_true", help="the input is JSONL (implied by a .jsonl file name)")
    p.add_argument("-o", "--output", metavar="FILE", help="write results here (atomically) instead of stdout")
    p.add_argument("--format", choices=("json", "jsonl"), default="json", help="output format (default json)")
    p.add_argument("-m", "--model", help="model folder or hub name (default albert-base-v2, else the shipped model)")
    p.add_argument("--tokenizer", help="tokenizer folder or name (default: the model's)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, mps)")
    p.add_argument("--dtype", default=None, help="float32, bfloat16 or float16 (default: the checkpoint's)")
    p.add_argument("--batch-size", type=int, default=32, help="inputs per forward pass (default 32)")
    p.add_argument(
        "--fast",
        choices=FAST_MODES,
        default=None,
        help="fast path: bf16 weights, int8 dynamic quantization, ONNX Runtime (needs albertkit[onnx]), "
        "or auto: the fastest correct one for this CPU, named on stderr (default fp32)",
    )
    p.add_argument("--calibration", metavar="FILE",
                   help="with --fast int8 (or auto where it picks int8): texts like the inputs, one per line, "
                   "to calibrate the int8 smoothing on (default: random token ids)")
    p.add_argument("--truncate", action="store_true", help="cut too-long texts (with a warning) instead of failing")


def _read_inputs(args: argparse.Namespace, keys: tuple[str, ...]) -> list[Any]:
    """Inputs as strings, or dicts with ``keys`` when read from JSONL."""
    from albertkit.cli import CommandError

    if getattr(args, "texts", None):
        if args.input:
            raise CommandError("give texts as arguments or with --input, not both")
        return list(args.texts)
    source = args.input
    if source is None:
        if sys.stdin.isatty():
            raise CommandError("no input: give text arguments, --input FILE, or pipe text into stdin")
        source = "-"
    name = "<stdin>" if source == "-" else source
    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    jsonl = args.jsonl or str(source).endswith(".jsonl")
    items: list[Any] = []
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        if not jsonl:
            items.append(line)
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{name}, line {lineno}: invalid JSON ({exc.msg}, column {exc.colno})") from None
        if isinstance(obj, str) and keys == ("text",):
            items.append(obj)
            continue
        if not isinstance(obj, dict) or keys[0] not in obj:
            raise CommandError(f"{name}, line {lineno}: expected an object with key {keys[0]!r}")
        missing = [k for k in keys if k not in obj and k != "text_pair"]
        if missing:
            raise CommandError(f"{name}, line {lineno}: missing field(s) {', '.join(missing)}")
        for k in keys:
            want = list if k == "choices" else str
            if k in obj and not isinstance(obj[k], want):
                raise CommandError(
                    f"{name}, line {lineno}: field {k!r} must be a {'list' if want is list else 'string'}, "
                    f"got {type(obj[k]).__name__}"
                )
        # Single-text tasks take the string itself; pairs and QA take the object.
        items.append(obj["text"] if keys == ("text",) else {k: obj[k] for k in keys if k in obj})
    if not items:
        raise CommandError(f"{name}: no inputs (the file is empty)")
    return items


def _calibration_texts(args: argparse.Namespace) -> list[str] | None:
    """``--calibration FILE``'s lines, checked against ``--fast``."""
    from albertkit.cli import CommandError

    path = getattr(args, "calibration", None)
    if path is None:
        return None
    if args.fast not in ("int8", "auto"):
        raise CommandError(f"--calibration calibrates the int8 path: use it with --fast int8 or auto, not {args.fast or 'fp32'}")
    return read_calibration_file(path)


def read_calibration_file(path: str) -> list[str]:
    """A calibration file's texts: one per line, UTF-8, blank lines skipped (``--calibration FILE``
    of the pipeline commands and ``albertkit serve``); a clear error when it has none."""
    from albertkit.cli import CommandError

    try:
        raw = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"{path}: no such calibration file") from None
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    texts = [line for line in raw.splitlines() if line.strip()]
    if not texts:
        raise CommandError(f"{path}: no calibration texts (the file is empty)")
    return texts


def _build(task: str, args: argparse.Namespace, **defaults: Any) -> Any:
    from albertkit.pipelines import pipeline

    return pipeline(
        task,
        model=args.model,
        tokenizer=args.tokenizer,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        truncation="warn" if args.truncate else "error",
        fast=args.fast,
        calibration=_calibration_texts(args),
        **defaults,
    )


def _write(args: argparse.Namespace, results: list[Any], single: bool) -> None:
    if args.format == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    else:
        text = _pretty(results[0] if single else results) + "\n"
    if args.output:
        from albertkit.utils import atomic_write_text

        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)


def _pretty(value: Any, indent: int = 0) -> str:
    """Indented JSON, except that a list of numbers stays on one line (an embedding is one row, not 768)."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_pretty(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return "[\n" + ",\n".join(inner + _pretty(v, indent + 2) for v in value) + "\n" + pad + "]"
    return json.dumps(value, ensure_ascii=False)


def _run(task: str, args: argparse.Namespace, keys: tuple[str, ...], call: dict[str, Any], build: dict[str, Any]) -> int:
    items = _read_inputs(args, keys)
    pipe = _build(task, args, **build)
    results = pipe.run_many(items, **call)
    _write(args, results, single=len(items) == 1)
    return 0


# ------------------------------------------------------------------------------------------ handlers
def _fill_mask(args: argparse.Namespace) -> int:
    targets = [t for t in args.targets.split(",") if t] if args.targets else None
    return _run("fill-mask", args, ("text",), {"top_k": args.top_k, "targets": targets}, {})


def _embed(args: argparse.Namespace) -> int:
    # unset options fall back to the model's own (a sentence-transformers folder), else mean, unnormalised
    call = {k: v for k, v in (("pooling", args.pooling), ("normalize", args.normalize)) if v is not None}
    return _run("sentence-embedding", args, ("text",), call, {})


def _features(args: argparse.Namespace) -> int:
    return _run("feature-extraction", args, ("text",), {}, {})


def _classify(args: argparse.Namespace) -> int:
    call: dict[str, Any] = {"function_to_apply": args.function}
    if args.all_scores:
        call["top_k"] = None
    elif args.top_k is not None:
        call["top_k"] = args.top_k
    if args.pair is not None:
        args.texts = None
        args.input = None
        items = [{"text": t, "text_pair": args.pair} for t in (args.pair_texts or [])]
        pipe = _build("text-classification", args)
        _write(args, pipe.run_many(items, **call), single=len(items) == 1)
        return 0
    return _run("text-classification", args, ("text", "text_pair"), call, {})


def _ner(args: argparse.Namespace) -> int:
    call: dict[str, Any] = {"aggregation_strategy": args.aggregation}
    if args.keep_all:
        call["ignore_labels"] = []
    return _run("token-classification", args, ("text",), call, {})


def _qa(args: argparse.Namespace) -> int:
    from albertkit.cli import CommandError

    call = {
        "top_k": args.top_k,
        "max_answer_len": args.max_answer_len,
        "doc_stride": args.doc_stride,
        "max_seq_len": args.max_seq_len,
        "handle_impossible_answer": args.handle_impossible_answer,
    }
    call = {k: v for k, v in call.items() if v is not None}
    if args.question is not None or args.context is not None:
        if args.question is None or args.context is None or args.input:
            raise CommandError("give both --question and --context, or --input FILE.jsonl")
        items = [{"question": args.question, "context": args.context}]
    else:
        args.jsonl = True
        items = _read_inputs(args, ("question", "context"))
    pipe = _build("question-answering", args)
    _write(args, pipe.run_many(items, **call), single=len(items) == 1)
    return 0


def _multiple_choice(args: argparse.Namespace) -> int:
    from albertkit.cli import CommandError

    call = {} if args.top_k is None else {"top_k": args.top_k}
    if args.question is not None or args.choice:
        if args.question is None or len(args.choice or []) < 2 or args.input:
            raise CommandError("give --question and at least two --choice, or --input FILE.jsonl")
        items = [{"question": args.question, "choices": list(args.choice)}]
    else:
        args.jsonl = True
        items = _read_inputs(args, ("question", "choices"))
    pipe = _build("multiple-choice", args)
    _write(args, pipe.run_many(items, **call), single=len(items) == 1)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fill-mask", help="predict the [MASK] token(s) of texts")
    _common(p)
    p.add_argument("-k", "--top-k", type=int, default=5, help="candidates per mask (default 5)")
    p.add_argument("--targets", help="comma-separated candidate tokens to score instead of the whole vocab")
    p.set_defaults(func=_fill_mask)

    p = subparsers.add_parser("embed", help="one sentence embedding per text")
    _common(p)
    p.add_argument("--pooling", help="cls, mean, max, mean_sqrt_len_tokens, weightedmean, lasttoken, or several "
                   "joined by + (default: a sentence-transformers folder's own, else mean)")
    p.add_argument("--normalize", action="store_true", default=None,
                   help="L2-normalise the embeddings (default: as a sentence-transformers folder says, else not)")
    p.set_defaults(func=_embed)

    p = subparsers.add_parser("features", help="token vectors per text ([1, T, H], as transformers)")
    _common(p)
    p.set_defaults(func=_features)

    p = subparsers.add_parser("classify", help="classify texts or text pairs (JSONL text/text_pair)")
    _common(p)
    p.add_argument("-k", "--top-k", type=int, default=None, help="return the k best labels")
    p.add_argument("--all-scores", action="store_true", help="return every label's score")
    p.add_argument("--function", choices=("softmax", "sigmoid", "none"), default=None, help="score function")
    p.add_argument("--pair", default=None, help="second text, paired with each TEXT")
    p.set_defaults(func=_classify_entry)

    p = subparsers.add_parser("ner", help="token classification with entity grouping")
    _common(p)
    p.add_argument("--aggregation", choices=("none", "simple", "first", "average", "max"), default="simple")
    p.add_argument("--keep-all", action="store_true", help="keep 'O' tokens too")
    p.set_defaults(func=_ner)

    p = subparsers.add_parser("qa", help="extractive question answering")
    _common(p, texts=False)
    p.add_argument("--question", help="the question")
    p.add_argument("--context", help="the context to find the answer in")
    p.add_argument("-k", "--top-k", type=int, default=None, help="n-best answers (default 1)")
    p.add_argument("--max-answer-len", type=int, default=None, help="longest answer in tokens (default 15)")
    p.add_argument("--doc-stride", type=int, default=None, help="overlap of context windows (default 128)")
    p.add_argument("--max-seq-len", type=int, default=None, help="window length in tokens (default 384)")
    p.add_argument("--handle-impossible-answer", action="store_true", help="allow the empty (no-answer) answer")
    p.set_defaults(func=_qa)

    p = subparsers.add_parser("multiple-choice", help="score the choices of a question (RACE / SWAG style)")
    _common(p, texts=False)
    p.add_argument("--question", help="the question (or context + question)")
    p.add_argument("--choice", action="append", help="one answer; repeat for each (at least two)")
    p.add_argument("-k", "--top-k", type=int, default=None, help="the k best choices (default: all, best first)")
    p.set_defaults(func=_multiple_choice)


def _classify_entry(args: argparse.Namespace) -> int:
    if args.pair is not None:
        if not args.texts:
            from albertkit.cli import CommandError

            raise CommandError("--pair needs TEXT arguments to pair with")
        args.pair_texts = list(args.texts)
    return _classify(args)
