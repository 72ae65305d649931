"""``albertkit export savedmodel MODEL OUTPUT [--task TASK]``: a thin shell over :func:`albertkit.keras.export.export_savedmodel`.

    $ albertkit export savedmodel out/sst2 serving/sst2/1 --task text-classification

Added as a format under ``albertkit export`` (created by :mod:`albertkit.export_commands`); keras
loads only when the command runs, so ``albertkit --help`` works without the ``tf`` extra.
"""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger(__name__)

from albertkit.layout import TASK_TO_CLASS as _ALL_TASKS

# --task name -> Keras class: every export task but multiple choice, which albertkit.keras lacks.
TASK_TO_CLASS = {task: name for task, name in _ALL_TASKS.items() if name != "AlbertForMultipleChoice"}


def _format_parsers(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The FORMAT sub-commands of ``albertkit export``, creating ``export`` if no other module did."""
    export = subparsers.choices.get("export")
    if export is None:
        export = subparsers.add_parser("export", help="export a model to another runtime")
        # `albertkit export` alone: cli.main reports the missing format as one error line.
    for action in export._actions:  # argparse keeps sub-command tables only there
        if isinstance(action, argparse._SubParsersAction):
            return action
    return export.add_subparsers(dest="format", metavar="FORMAT")


def register(subparsers: argparse._SubParsersAction) -> None:
    saved = _format_parsers(subparsers).add_parser(
        "savedmodel",
        help="TensorFlow SavedModel with a serving signature (input_ids, attention_mask, token_type_ids) for TF Serving (needs albertkit[tf])",
    )
    saved.add_argument("model", metavar="MODEL", help="model name or folder (Hugging Face layout)")
    saved.add_argument("output", metavar="OUTPUT", help="the SavedModel folder to write (replaced as a whole)")
    saved.add_argument(
        "--task",
        choices=sorted(TASK_TO_CLASS),
        default=None,
        help="which head to export (default: the architecture in config.json, else features)",
    )
    saved.add_argument("--int64", action="store_true", help="int64 inputs in the signature (default int32, as return_tensors='tf')")
    saved.set_defaults(func=_export_savedmodel)


def _export_savedmodel(args: argparse.Namespace) -> int:
    from albertkit.cli import CommandError
    from albertkit.keras import require_keras

    try:
        require_keras()
        import tensorflow  # noqa: F401  (SavedModel needs it whatever the Keras backend)
    except ImportError as exc:
        raise CommandError(f"{exc}" if "albertkit[tf]" in str(exc) else f"SavedModel export needs tensorflow: pip install 'albertkit[tf]' ({exc})") from None
    from albertkit.config import CONFIG_NAME, AlbertConfig
    from albertkit.hub import resolve_file
    from albertkit.keras import export_savedmodel
    from albertkit.keras.heads import TASK_CLASSES

    if args.task is None:
        config = AlbertConfig.from_json_file(resolve_file(args.model, CONFIG_NAME))
        known = [a for a in (config.architectures or []) if a in TASK_CLASSES]
        name = known[0] if known else "AlbertModel"
    else:
        name = TASK_TO_CLASS[args.task]
    model = TASK_CLASSES[name].from_pretrained(args.model)
    path = export_savedmodel(model, args.output, dtype="int64" if args.int64 else "int32")
    logger.info("wrote %s (%s, serving signature 'serving_default')", path, name)
    return 0
