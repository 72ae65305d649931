"""``albertkit export onnx MODEL OUTPUT [--task TASK] [--int8] [--plain]``: a thin shell over :func:`albertkit.fast.export_onnx`.

    $ albertkit export onnx albert-base-v2 albert-mlm.onnx --task fill-mask --int8
"""

from __future__ import annotations

import argparse
import logging

from albertkit.layout import EXPORT_TASKS, TASK_TO_CLASS

logger = logging.getLogger(__name__)

# Opsets the TorchScript exporter writes this graph in (LayerNormalization is opset 17; older ones decompose it).
MIN_OPSET, MAX_OPSET = 14, 20

TASKS = EXPORT_TASKS  # the export tasks of the one task table (albertkit.layout.TASKS)


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("export", help="export a model to another runtime")
    formats = export.add_subparsers(dest="format", metavar="FORMAT")
    onnx = formats.add_parser(
        "onnx",
        help="ONNX graph with dynamic batch/sequence axes, runnable by ONNX Runtime (needs albertkit[onnx])",
    )
    onnx.add_argument("model", metavar="MODEL", help="model name or folder (Hugging Face layout)")
    onnx.add_argument("output", metavar="OUTPUT", help="the .onnx file to write")
    onnx.add_argument("--task", choices=TASKS, default="fill-mask", help="which head to export (default: fill-mask)")
    onnx.add_argument("--int8", action="store_true", help="apply ONNX Runtime dynamic int8 quantization to the MatMuls")
    onnx.add_argument("--plain", action="store_true",
                      help="standard ONNX ops only, for runtimes other than ONNX Runtime (default: ONNX Runtime's fused "
                           "Attention / SkipLayerNormalization / FastGelu ops, faster there)")
    onnx.add_argument("--opset", type=int, default=17, help=f"ONNX opset, {MIN_OPSET} to {MAX_OPSET} (default: 17)")
    onnx.set_defaults(func=_export_onnx)
    # `albertkit export` alone: cli.main reports the missing format as one error line.


def _export_onnx(args: argparse.Namespace) -> int:
    from albertkit.cli import CommandError

    try:
        from albertkit.fast import export_onnx, _require_onnx

        _require_onnx()
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    from albertkit.modeling import MODEL_CLASSES

    if not str(args.output).endswith(".onnx"):
        raise CommandError(f"OUTPUT must be a .onnx file, got {args.output!r}")
    if not MIN_OPSET <= args.opset <= MAX_OPSET:
        raise CommandError(f"--opset {args.opset} is not supported; use {MIN_OPSET} to {MAX_OPSET} (default 17)")
    cls = MODEL_CLASSES[TASK_TO_CLASS[args.task]]
    model = cls.from_pretrained(args.model, require_head=f"exporting it for {args.task}")
    try:
        path = export_onnx(model, args.output, int8=args.int8, opset=args.opset, fuse=not args.plain)
    except (RuntimeError, TypeError) as exc:  # the exporter's messages can carry a whole graph: first line only
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise CommandError(f"ONNX export at opset {args.opset} failed: {first[:300]}") from None
    logger.info("wrote %s (%s%s)", path, cls.__name__, ", int8" if args.int8 else "")
    return 0
