"""A model card (README.md, as the hub renders them) written from what a model folder holds.

Every number on the card comes from a file in the folder (or one passed in); nothing is typed in.
``render_card(folder)`` reads exactly these, each optional except ``config.json``:

===============================  ================================================================
``config.json``                  the configuration table (as ALBERT's card: repeating layers,
                                 embedding and hidden size, heads, parameters); the parameter
                                 count comes from loading the weights with the class named in
                                 ``architectures``, the tied decoder counted once
``model.safetensors`` / ``.bin`` parameters and size on disk
``spiece.model``,                tokenizer: pieces, lowercasing, accents, maximum length
``tokenizer_config.json``
``training/*pretraining_recipe.json``  what ``albertkit pretrain`` writes: corpus, documents,
                                 sequence length, masking, optimizer, steps, batch, precision.
                                 Several runs in one folder are told apart by a file-name prefix
                                 (``phase1_pretraining_recipe.json``, ``phase1_eval_log.csv``...)
                                 When the folder has no ``training/`` but is a run's ``model/``
                                 (``albertkit pretrain --output RUN`` saves to ``RUN/model``), the
                                 logs are read from ``RUN`` itself
``training/*train_log.csv``      the last logged step and loss, the median tokens/s
``training/*eval_log.csv``       the held-out evaluations during training, one table row each
evaluation files                 JSON files in the folder, ``training/`` and ``eval/`` that
                                 albertkit wrote: ``albertkit evaluate`` / ``finetune``'s
                                 ``eval_results.json`` (a ``task`` key: GLUE, SQuAD, RACE...) and
                                 ``albertkit evaluate-pretraining --output`` (``masked_lm_accuracy``);
                                 plus any given with ``eval_results=``
``bias_results.json``            ``albertkit bias --summary``: the probe and CrowS-Pairs
``card_notes.md``                hand-written text, carried over verbatim: optional YAML front
                                 matter (merged into the card's: ``license``, ``language``,
                                 ``tags``, ``datasets``...), a preamble (placed under the
                                 title), and ``## Section`` blocks; a block named like a generated
                                 section is appended to it, the others follow the generated ones.
                                 Numbers in the notes are read from files with three directives
                                 (paths relative to the folder), so that a fact lives in one file:
                                 ``{{value FILE.json KEY[.KEY] SPEC}}`` one number (SPEC ``pct``
                                 for 0.209 -> 20.9%, else a format spec such as ``.3f`` or ``,``);
                                 ``{{table FILE.csv [every=N] COLUMN[:SPEC] ...}}`` a table of those
                                 columns (every=N: rows whose first column is a multiple of N, and
                                 the last); ``{{fill-mask FILE.json}}`` the top-k table of a file
                                 holding ``inputs`` and ``albertkit fill-mask``'s ``results``
===============================  ================================================================

    >>> text = render_card("src/albertkit/models/albert-mini-en")  # doctest: +SKIP
    >>> write_card("my-model", "my-model/README.md")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import statistics
from pathlib import Path
from typing import Any, Sequence

__all__ = ["NOTES_FILE", "BIAS_FILE", "CardError", "render_card", "write_card", "find_eval_results"]

NOTES_FILE = "card_notes.md"
BIAS_FILE = "bias_results.json"
TRAINING_DIR = "training"
EVAL_ROWS = 12  # rows of a training run's held-out evaluation table; a longer log is sampled evenly
EVAL_DIRS = (".", TRAINING_DIR, "eval")
PIPELINE_TAGS = {"ForMaskedLM": "fill-mask", "ForPreTraining": "fill-mask", "ForSequenceClassification": "text-classification",
                 "ForTokenClassification": "token-classification", "ForQuestionAnswering": "question-answering",
                 "ForMultipleChoice": "multiple-choice", "Model": "feature-extraction"}


class CardError(ValueError):
    """A folder or file the card cannot be written from; the message names it."""


# ------------------------------------------------------------------------------------ file reading
def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CardError(f"{path}: cannot read JSON ({exc})") from None


def _csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CardError(f"{path}: cannot read CSV ({exc})") from None


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _pct(value: Any) -> str:
    v = _num(value)
    return "" if v is None else f"{100 * v:.1f}%"


def _int(value: Any) -> str:
    v = _num(value)
    return "" if v is None else f"{int(v):,}"


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def _code(text: str) -> str:
    """``text`` as an inline code span (a word like ``<unk>`` would otherwise vanish as an HTML tag)."""
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if fence == "`" else f"{fence} {text} {fence}"


def _loss(value: Any) -> str:
    v = _num(value)
    return "" if v is None else f"{v:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    align = align or "l" * len(header)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """A small YAML subset: ``key: value`` and ``key:`` followed by ``- item`` lines."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    if end < 0:
        return {}, text
    data: dict[str, Any] = {}
    key = None
    for line in text[4:end].splitlines():
        if line.strip().startswith("- ") and key is not None:
            data.setdefault(key, [])
            data[key].append(line.strip()[2:].strip())
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            if value.strip():
                data[key] = value.strip()
    return data, text[end + 4 :].lstrip("\n")


def _notes(folder: Path) -> tuple[dict[str, Any], str, list[tuple[str, str]]]:
    """Front matter, preamble, and [(section title, body)] of the folder's hand-written notes."""
    path = folder / NOTES_FILE
    if not path.is_file():
        return {}, "", []
    meta, body = _split_front_matter(path.read_text(encoding="utf-8"))
    body = _expand(folder, body)
    preamble: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif sections:
            sections[-1][1].append(line)
        else:
            preamble.append(line)
    return meta, "\n".join(preamble).strip(), [(t, "\n".join(b).strip()) for t, b in sections]


# ------------------------------------------------------------------------------------ directives
_DIRECTIVE = re.compile(r"\{\{(value|table|fill-mask) ([^{}]*)\}\}")


def _format(value: Any, spec: str, where: str) -> str:
    v = _num(value)
    if v is None:
        return "" if value in (None, "") else str(value)
    if spec == "pct":
        return f"{100 * v:.1f}%"
    if spec in ("", "raw"):
        return str(value)
    try:
        return format(int(v) if spec.endswith(("d", ",")) and v.is_integer() else v, spec)
    except ValueError:
        raise CardError(f"{where}: bad format spec {spec!r} (pct, or a Python spec such as .3f or ,)") from None


def _directive(folder: Path, kind: str, args: list[str]) -> str:
    if not args:
        raise CardError(f"{folder / NOTES_FILE}: {{{{{kind}}}}} needs a file")
    path = folder / args[0]
    if not path.is_file():
        raise CardError(f"{folder / NOTES_FILE}: {{{{{kind} {args[0]}}}}}: no such file {path}")
    if kind == "value":
        if len(args) != 3:
            raise CardError(f"{folder / NOTES_FILE}: {{{{value {' '.join(args)}}}}}: expected FILE KEY SPEC")
        data = _json(path)
        for key in args[1].split("."):
            if not isinstance(data, dict) or key not in data:
                raise CardError(f"{path}: no key {args[1]!r} (asked for by {NOTES_FILE})")
            data = data[key]
        return _format(data, args[2], str(path))
    if kind == "fill-mask":
        data = _json(path)
        try:
            rows = [(text, ", ".join(f"{_code(p['token_str'].strip() or p['token_str'])} {p['score']:.3f}" for p in preds))
                    for text, preds in zip(data["inputs"], data["results"], strict=True)]
        except (KeyError, TypeError, ValueError) as exc:
            raise CardError(f"{path}: expected 'inputs' and fill-mask 'results' of the same length ({exc})") from None
        return _table(["input", "top predictions (probability)"], rows)
    every = next((int(a[6:]) for a in args[1:] if a.startswith("every=")), None)
    columns = [a.partition(":")[::2] for a in args[1:] if not a.startswith("every=")]
    table = _csv(path)
    if not table:
        raise CardError(f"{path}: no rows")
    columns = columns or [(c, "") for c in table[0]]
    for name, _ in columns:
        if name not in table[0]:
            raise CardError(f"{path}: no column {name!r} (asked for by {NOTES_FILE})")
    if every:
        first = next(iter(table[0]))
        table = [r for i, r in enumerate(table) if i == len(table) - 1 or (_num(r[first]) or 0) % every == 0]
    rows = [[_format(r[name], spec, str(path)) for name, spec in columns] for r in table]
    align = "".join("r" if all(_num(r[name]) is not None for r in table) else "l" for name, _ in columns)
    return _table([name.replace("_", " ") for name, _ in columns], rows, align)


def _expand(folder: Path, text: str) -> str:
    """``text`` with its ``{{value ...}}``, ``{{table ...}}`` and ``{{fill-mask ...}}`` directives rendered."""
    return _DIRECTIVE.sub(lambda m: _directive(folder, m.group(1), shlex.split(m.group(2))), text)


# ------------------------------------------------------------------------------------ the sections
def _model_section(folder: Path, config: dict[str, Any]) -> tuple[str, str]:
    """(architecture class, markdown) of the configuration table."""
    from albertkit.modeling import MODEL_CLASSES

    arch = (config.get("architectures") or ["AlbertForMaskedLM"])[0]
    cls = MODEL_CLASSES.get(arch) or MODEL_CLASSES["AlbertForMaskedLM"]
    weights = [folder / n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).is_file()]
    params = cls.from_pretrained(str(folder)).num_parameters() if weights else None
    files = [*weights[:1], *[folder / "spiece.model"] * (folder / "spiece.model").is_file()]
    size = sum(p.stat().st_size for p in files)
    layers, groups, inner = config.get("num_hidden_layers"), config.get("num_hidden_groups", 1), config.get("inner_group_num", 1)
    rows = [
        ("architecture", f"ALBERT, `{arch}` weights"),
        ("repeating layers", f"{layers} ({groups} shared group(s) of {inner} layer(s))"),
        ("embedding size", _fmt(config.get("embedding_size"))),
        ("hidden size", _fmt(config.get("hidden_size"))),
        ("intermediate size", _fmt(config.get("intermediate_size"))),
        ("attention heads", _fmt(config.get("num_attention_heads"))),
        ("activation", config.get("hidden_act", "")),
        ("dropout (hidden / attention)", f"{config.get('hidden_dropout_prob')} / {config.get('attention_probs_dropout_prob')}"),
        ("max positions", _fmt(config.get("max_position_embeddings"))),
        ("vocabulary", _fmt(config.get("vocab_size"))),
    ]
    if params is not None:
        rows.append(("parameters", f"{params:,} (tied decoder counted once)"))
    if size:
        rows.append(("size on disk", f"{size / 1e6:.1f} MB ({', '.join(p.name for p in files)})"))
    return arch, _table(["", ""], rows)


def _tokenizer_section(folder: Path) -> str:
    spiece = folder / "spiece.model"
    if not spiece.is_file():
        return "No `spiece.model` in the folder."
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor()
    sp.Load(str(spiece))
    cfg_path = folder / "tokenizer_config.json"
    cfg = _json(cfg_path) if cfg_path.is_file() else {}
    lower = cfg.get("do_lower_case", True)
    return (
        f"SentencePiece unigram model (`spiece.model`), {sp.GetPieceSize():,} pieces; "
        f"{'lowercased' if lower else 'cased'}, accents {'kept' if cfg.get('keep_accents', False) else 'removed (NFKD)'}, "
        f"at most {_int(cfg.get('model_max_length', 512))} tokens. Loads with `albertkit.AlbertTokenizer` "
        "and transformers' `AlbertTokenizer`."
    )


def _runs(training: Path) -> list[str]:
    """Prefixes of the runs logged in ``training/`` ("" for an unprefixed run), in name order."""
    found = set()
    for suffix in ("pretraining_recipe.json", "train_log.csv", "eval_log.csv"):
        for p in training.glob(f"*{suffix}"):
            found.add(p.name[: -len(suffix)])
    return sorted(found)


def _training_dir(folder: Path) -> Path:
    """``folder/training``, or the pretraining run folder that holds ``folder`` as its ``model/``."""
    if (folder / TRAINING_DIR).is_dir() or not (folder.parent / "pretraining_recipe.json").is_file():
        return folder / TRAINING_DIR
    return folder.parent


def _training_section(folder: Path) -> str:
    training = _training_dir(folder)
    shown = TRAINING_DIR if training == folder / TRAINING_DIR else ".."  # paths as seen from the model folder
    if not training.is_dir() or not _runs(training):
        return ""
    parts = []
    for prefix in _runs(training):
        title = prefix.rstrip("_-") or "training"
        recipe_path = training / f"{prefix}pretraining_recipe.json"
        recipe = _json(recipe_path) if recipe_path.is_file() else {}
        args = recipe.get("training") or (_json(training / f"{prefix}training_args.json") if (training / f"{prefix}training_args.json").is_file() else {})
        rows = []
        if recipe:
            rows += [
                ("documents", f"{_int(recipe.get('train_documents'))} for training, {_int(recipe.get('heldout_documents'))} held out"),
                ("sequences", f"{recipe.get('max_seq_length')} tokens (short_seq_prob {recipe.get('short_seq_prob')})"),
                ("masking", f"n-gram MLM (n <= {recipe.get('max_ngram')}), {recipe.get('masked_lm_prob')} of tokens, at most {recipe.get('max_predictions_per_seq')} per sequence; + sentence-order prediction"),
            ]
        if args:
            rows += [
                ("optimizer", f"{args.get('optimizer')}, lr {args.get('lr')}, {args.get('warmup_steps')} warmup steps then linear decay, weight decay {args.get('weight_decay')}, clipping {args.get('max_grad_norm')}"),
                ("steps x batch", f"{_int(args.get('max_steps'))} x {args.get('batch_size')} (accumulation {args.get('grad_accumulation', 1)})"),
                ("precision", ("bf16 autocast" if args.get("bf16") else "fp32") + (", torch.compile" if args.get("compile") else "")),
                ("data seed", args.get("seed")),
            ]
        log_path = training / f"{prefix}train_log.csv"
        if log_path.is_file():
            log = _csv(log_path)
            if log:
                speeds = [v for v in (_num(r.get("tokens_per_s")) for r in log) if v]
                rows.append(("last logged step", f"{_int(log[-1].get('step'))}: training loss {_loss(log[-1].get('loss'))}"
                             + (f"; median {statistics.median(speeds):,.0f} tokens/s" if speeds else "")))
        parts.append(f"### {title}\n\n" + (_table(["", ""], rows) if rows else "") + f"\n\nFiles: `{shown}/{prefix}*`.")
        eval_path = training / f"{prefix}eval_log.csv"
        if eval_path.is_file():
            evals = _csv(eval_path)
            if evals:
                total = len(evals)
                stride = -(-total // EVAL_ROWS)  # long logs: every stride-th row and the last
                evals = [r for i, r in enumerate(evals) if i % stride == stride - 1 or i == total - 1]
                mask_only = "mask_only_accuracy" in evals[0]  # [MASK]-only accuracy (issue #14), when logged
                parts.append(
                    f"Held-out evaluation during {title} (`{shown}/{eval_path.name}`"
                    + (f", one row in {stride} of {total} evaluations and the last" if stride > 1 else "") + "):\n\n"
                    + _table(
                        ["step", "masked_lm_loss", "masked_lm_accuracy", *["mask_only_accuracy"] * mask_only,
                         "sentence_order_loss", "sentence_order_accuracy", "instances"],
                        [(r.get("step"), _loss(r.get("masked_lm_loss")), _pct(r.get("masked_lm_accuracy")),
                          *[_pct(r.get("mask_only_accuracy"))] * mask_only,
                          _loss(r.get("sentence_order_loss")), _pct(r.get("sentence_order_accuracy")), _int(r.get("instances")))
                         for r in evals],
                        "rrrrrrr"[: 6 + mask_only],
                    )
                )
    return "\n\n".join(parts)


def find_eval_results(folder: str | os.PathLike) -> list[Path]:
    """albertkit evaluation files in ``folder``, ``folder/training`` and ``folder/eval`` (sorted)."""
    folder = Path(folder)
    found = []
    for sub in EVAL_DIRS:
        for p in sorted((folder / sub).glob("*.json")):
            if p.name in (BIAS_FILE, "config.json", "tokenizer_config.json", "special_tokens_map.json"):
                continue
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(data, dict) and ("masked_lm_accuracy" in data or "task" in data):
                found.append(p)
    return found


def _eval_section(folder: Path, files: Sequence[Path]) -> str:
    pre, fine = [], []
    for path in files:
        data = _json(path)
        try:
            shown = path.relative_to(folder)
        except ValueError:
            shown = path
        if "masked_lm_accuracy" in data:
            pre.append((f"`{shown}`", _int(data.get("instances")), _int(data.get("masked_tokens")), _loss(data.get("masked_lm_loss")),
                        _pct(data.get("masked_lm_accuracy")), _pct(data.get("sentence_order_accuracy"))))
        elif "task" in data:
            skip = {"task", "data", "examples", "prediction_files", "articles", "null_threshold_source"}
            metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in data.items() if k not in skip and isinstance(v, (int, float)))
            fine.append((data["task"], f"`{shown}`", f"`{data.get('data', '')}`", _int(data.get("examples")), metrics))
    parts = []
    if pre:
        parts.append("Masked-LM and sentence-order prediction on held-out text (`albertkit evaluate-pretraining`):\n\n"
                     + _table(["file", "instances", "masked tokens", "MLM loss", "MLM accuracy", "SOP accuracy"], pre, "lrrrrr"))
    if fine:
        parts.append("Fine-tuned tasks (`albertkit evaluate` / `finetune`, official metrics):\n\n"
                     + _table(["task", "file", "data", "examples", "metrics"], fine, "lllrl"))
    return "\n\n".join(parts)


def _bias_section(folder: Path) -> str:
    path = folder / BIAS_FILE
    if not path.is_file():
        return (f"Not measured yet: `albertkit bias {folder} --crows-pairs crows_pairs_anonymized.csv --summary "
                f"{folder / BIAS_FILE}` writes the results this section reports.")
    data = _json(path)
    parts = []
    command = data.get("command")
    if command:
        parts.append(f"Measured with `{command}`.")
    probe = data.get("probe")
    if probe:
        first = probe["results"][0]
        parts.append(
            f"**Occupation probe** ({len(probe['templates'])} templates x {len(probe['pairs'])} subject pairs, top {probe['top_k']}). "
            "The first template and pair, the probe of ALBERT's own card:\n\n"
            + _table(["rank", f"`{first['sentence_a']}`", "p", f"`{first['sentence_b']}`", "p"],
                     [(i + 1, _code(a[0]), f"{a[1]:.3f}", _code(b[0]), f"{b[1]:.3f}") for i, (a, b) in enumerate(zip(first["top_a"], first["top_b"]))],
                     "rlrlr")
        )
        rows = []
        for s in probe["summary"]:
            only_a = ", ".join(f"{_code(w)} ({n})" for w, n in list(s["only_a"].items())[:8])
            only_b = ", ".join(f"{_code(w)} ({n})" for w, n in list(s["only_b"].items())[:8])
            rows.append((f"{s['a']} / {s['b']}", f"{s['mean_mass_shift']:.3f}", only_a, only_b))
        parts.append(
            "Per pair over all templates: the mean probability mass that moves when the subject is swapped "
            "(total variation distance of the two predictions, 0 to 1) and the words in one subject's top "
            f"{probe['top_k']} only (how many templates):\n\n"
            + _table(["subjects (a / b)", "mass shift", "top words for a only", "top words for b only"], rows, "lrll")
        )
    crows = data.get("crows_pairs")
    if crows:
        rows = [("all", _int(crows["pairs"]), f"{crows['metric_score']:.2f}")]
        rows += [(t, _int(v["pairs"]), f"{v['metric_score']:.2f}") for t, v in crows["by_bias_type"].items()]
        stereo = crows.get("stereotype_score")
        anti = crows.get("antistereotype_score")
        parts.append(
            f"**CrowS-Pairs** ({crows['pairs']:,} pairs of `{crows.get('file_name', 'crows_pairs_anonymized.csv')}`"
            + (f", the first {crows['limit']:,} only" if crows.get("limit") else "") + ", "
            "the data set's own pseudo-log-likelihood metric): % of pairs where the more stereotyping sentence "
            "scores higher; 50 is no preference.\n\n"
            + _table(["bias type", "pairs", "score"], rows, "lrr")
            + f"\n\nStereotype pairs {_fmt(stereo)}, anti-stereotype pairs {_fmt(anti)}, neutral {crows['neutral']} "
            f"({_fmt(crows.get('neutral_percent'))}%). {_int(crows.get('masked_copies'))} masked copies scored in {crows.get('seconds')} s "
            f"wall clock" + (f" ({crows['cpu_seconds']} s of CPU time)" if crows.get("cpu_seconds") is not None else "")
            + f" on {crows.get('device', 'cpu')} with {crows.get('threads')} threads"
            + ("." if crows.get("precision", "fp32") == "fp32" else f", in {crows['precision']} (approximate: the metric is defined in fp32).")
            + "\n\n"
            f"*Caveat:* {crows.get('caveat', '')}\n\nData: {crows.get('attribution', '')}."
        )
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------------------- the card
def render_card(
    folder: str | os.PathLike,
    eval_results: Sequence[str | os.PathLike] = (),
    *,
    name: str | None = None,
    license: str = "apache-2.0",
) -> str:
    """The card of the model in ``folder`` as Markdown with YAML front matter (module docstring).

        >>> print(render_card("runs/pt/model")[:3])  # doctest: +SKIP
        ---
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise CardError(f"{folder}: no config.json (a model card needs a model folder)")
    config = _json(config_path)
    if not isinstance(config, dict):
        raise CardError(f"{config_path}: expected a JSON object")
    extra = [Path(p) for p in eval_results]
    for p in extra:
        if not p.is_file():
            raise CardError(f"{p}: no such evaluation-results file")
    meta, preamble, notes = _notes(folder)
    arch, model_table = _model_section(folder, config)
    suffix = arch.removeprefix("Albert")
    front = {
        "language": meta.pop("language", "en"),
        "license": meta.pop("license", license),
        "library_name": meta.pop("library_name", "transformers"),
        "pipeline_tag": meta.pop("pipeline_tag", PIPELINE_TAGS.get(suffix, "fill-mask")),
        "tags": sorted({"albert", "albertkit", *(meta.pop("tags", None) or [])}),
        **meta,
    }
    files = [*find_eval_results(folder), *(p for p in extra if p.resolve() not in {f.resolve() for f in find_eval_results(folder)})]
    generated = [
        ("Model description", model_table),
        ("Tokenizer", _tokenizer_section(folder)),
        ("Training", _training_section(folder)),
        ("Evaluation results", _eval_section(folder, files)),
        ("Limitations and bias", _bias_section(folder)),
    ]
    note_map = dict(notes)
    sections = [(title, "\n\n".join(x for x in (body, note_map.pop(title, "")) if x)) for title, body in generated]
    sections += [(t, b) for t, b in notes if t in note_map and t != "Licence"]  # sections of their own
    licence = f"`{front['license']}`"
    sections.append(("Licence", "\n\n".join(x for x in (licence, note_map.get("Licence", "")) if x)))
    lines = ["---"]
    for key, value in front.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines += [f"- {v}" for v in value]
        else:
            lines.append(f"{key}: {value}")
    lines += ["---", "", f"<!-- Generated by `albertkit card` from the files in this folder; edit {NOTES_FILE}, not this file. -->", "",
              f"# {name or folder.resolve().name}", ""]
    if preamble:
        lines += [preamble, ""]
    for title, body in sections:
        if body:
            lines += [f"## {title}", "", body, ""]
    return "\n".join(lines).rstrip() + "\n"


def write_card(
    folder: str | os.PathLike, output: str | os.PathLike, eval_results: Sequence[str | os.PathLike] = (), **kwargs: Any
) -> Path:
    """Render the card and write it to ``output`` atomically (usually ``folder/README.md``)."""
    from albertkit.utils import atomic_write_text

    text = render_card(folder, eval_results, **kwargs)
    atomic_write_text(output, text)
    return Path(output)
