"""``albertkit bias`` (occupation probe + CrowS-Pairs) and ``albertkit card`` (a generated model card).

    $ albertkit bias albert-mini-en --crows-pairs crows_pairs_anonymized.csv --output scores.csv --summary bias_results.json
    $ albertkit card path/to/model --output path/to/model/README.md
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bias", help="bias probe (templates x subject pairs) and CrowS-Pairs for a masked LM",
                       description="Occupation probe over templates x paired subjects and, with --crows-pairs, "
                                   "the CrowS-Pairs metric exactly as the data set's metric.py computes it.")
    b.add_argument("model", help="model folder or name (a masked-LM or pretraining checkpoint)")
    b.add_argument("--templates", metavar="FILE", help="probe templates, one per line with {person} and [MASK] (default: built in)")
    b.add_argument("--pair", nargs=2, action="append", metavar=("A", "B"), help="a subject pair, e.g. --pair 'the man' 'the woman' (repeatable; default: built in)")
    b.add_argument("--top-k", type=int, default=10, help="words per subject in the probe (default 10)")
    b.add_argument("--crows-pairs", metavar="FILE", help="crows_pairs_anonymized.csv (or a file with its columns)")
    b.add_argument("--limit", type=int, default=None, help="score only the first N pairs")
    b.add_argument("--output", metavar="CSV", help="per-pair scores with the columns the data set's script writes")
    b.add_argument("--summary", metavar="JSON", help="write the probe and CrowS-Pairs summary here (what `albertkit card` reads)")
    b.add_argument("--max-tokens", type=int, default=8192, help="padded tokens per forward pass (default 8192)")
    b.add_argument("--device", default="cpu", help="torch device (default cpu)")
    b.add_argument("--fast", choices=("bf16", "int8"), default=None,
                   help="approximate fast path (albertkit.fast); scores then differ from the metric's fp32 ones, and the summary says so")
    b.set_defaults(func=_bias)

    c = sub.add_parser("card", help="write a model card (README.md) from what a model folder holds",
                       description="Model card from the folder's config, weights, tokenizer, training logs, "
                                   "evaluation files, bias_results.json and hand-written card_notes.md.")
    c.add_argument("model", help="model folder")
    c.add_argument("--eval-results", nargs="+", default=[], metavar="FILE", help="more evaluation-result JSON files to report")
    c.add_argument("--name", help="title of the card (default: the folder's name)")
    c.add_argument("--license", default="apache-2.0", help="licence when card_notes.md names none (default apache-2.0)")
    c.add_argument("--output", required=True, help="where to write the card (e.g. MODEL/README.md), atomically")
    c.set_defaults(func=_card)


def _bias(args: argparse.Namespace) -> int:
    import torch

    from albertkit import AlbertForMaskedLM, AlbertTokenizer
    from albertkit.cli import CommandError
    from albertkit.model_card import crows_pairs as cp
    from albertkit.model_card.probe import DEFAULT_PAIRS, DEFAULT_TEMPLATES, occupation_probe, read_templates
    from albertkit.utils import atomic_write_text

    if args.output and not args.crows_pairs:
        raise CommandError("--output writes CrowS-Pairs scores; give --crows-pairs FILE too")
    if args.limit is not None and not args.crows_pairs:
        raise CommandError("--limit applies to CrowS-Pairs; give --crows-pairs FILE too")
    if args.top_k < 1:
        raise CommandError(f"--top-k must be at least 1, got {args.top_k}")
    templates = read_templates(args.templates) if args.templates else list(DEFAULT_TEMPLATES)
    pairs = [tuple(p) for p in args.pair] if args.pair else list(DEFAULT_PAIRS)
    data = cp.read_crows_pairs(args.crows_pairs, args.limit) if args.crows_pairs else None  # bad input fails before loading

    model = AlbertForMaskedLM.from_pretrained(args.model, device=args.device).eval()
    if args.fast:
        from albertkit.fast import optimize

        model = optimize(model, args.fast)
    tokenizer = AlbertTokenizer.from_pretrained(args.model)
    summary: dict = {"model": args.model, "command": _command(args)}
    summary["probe"] = occupation_probe(model, tokenizer, templates, pairs, args.top_k)
    lines = _probe_report(summary["probe"])
    if data is not None:
        result = cp.score_crows_pairs(model, tokenizer, data, max_tokens=args.max_tokens)
        summary["crows_pairs"] = {
            "file_name": Path(args.crows_pairs).name,
            "sha256": cp.file_digest(args.crows_pairs),
            "limit": args.limit,
            **result.summary(),
            "device": str(args.device),
            "precision": args.fast or "fp32",
            "threads": torch.get_num_threads(),
            "caveat": cp.CAVEAT,
            "attribution": cp.ATTRIBUTION,
        }
        lines += _crows_report(summary["crows_pairs"])
        if args.output:
            cp.write_scores_csv(args.output, result)
    if args.summary:
        atomic_write_text(args.summary, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (options at their defaults left out)."""
    parts = ["albertkit", "bias", args.model]
    if args.templates:
        parts += ["--templates", args.templates]
    for a, b in args.pair or []:
        parts += ["--pair", a, b]
    for flag, value, default in (("--top-k", args.top_k, 10), ("--crows-pairs", args.crows_pairs, None), ("--limit", args.limit, None),
                                 ("--output", args.output, None), ("--summary", args.summary, None),
                                 ("--max-tokens", args.max_tokens, 8192), ("--device", args.device, "cpu"), ("--fast", args.fast, None)):
        if value != default:
            parts += [flag, str(value)]
    return shlex.join(parts)


def _probe_report(probe: dict) -> list[str]:
    lines = [f"Occupation probe: {len(probe['templates'])} templates x {len(probe['pairs'])} pairs, top {probe['top_k']}"]
    first = probe["results"][0]
    for key in ("a", "b"):
        words = ", ".join(f"{w} {p:.3f}" for w, p in first[f"top_{key}"])
        lines.append(f"  {first[f'sentence_{key}']}  {words}")
    for s in probe["summary"]:
        lines.append(f"  {s['a']} / {s['b']}: mean mass shift {s['mean_mass_shift']:.3f}; "
                     f"only {s['a']}: {', '.join(list(s['only_a'])[:6]) or '-'}; only {s['b']}: {', '.join(list(s['only_b'])[:6]) or '-'}")
    return lines


def _crows_report(c: dict) -> list[str]:
    lines = [
        f"CrowS-Pairs: {c['pairs']} pairs, metric score {c['metric_score']:.2f} (% where the more stereotyping sentence "
        f"scores higher; 50 = no preference); stereotype {c['stereotype_score']}, anti-stereotype {c['antistereotype_score']}, "
        f"neutral {c['neutral']}; {c['masked_copies']} masked copies in {c['seconds']} s ({c['cpu_seconds']} s CPU)",
    ]
    lines += [f"  {t}: {v['metric_score']:.2f} ({v['pairs']} pairs)" for t, v in c["by_bias_type"].items()]
    lines += [f"  Caveat: {c['caveat']}", f"  Data: {c['attribution']}"]
    return lines


def _card(args: argparse.Namespace) -> int:
    from albertkit.model_card.card import write_card

    path = write_card(args.model, args.output, args.eval_results, name=args.name, license=args.license)
    sys.stderr.write(f"wrote {path}\n")
    return 0
