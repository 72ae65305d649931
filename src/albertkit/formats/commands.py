"""``albertkit convert google CKPT_PREFIX --config albert_config.json [--spm 30k-clean.model] --output DIR``:
a thin shell over :func:`albertkit.formats.google.convert_google_checkpoint`.

    $ albertkit convert google albert_base/model.ckpt-best --config albert_base/albert_config.json \\
          --spm albert_base/30k-clean.model --output albert-base-hf
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    convert = subparsers.add_parser("convert", help="convert a checkpoint from another format to the Hugging Face layout")
    sources = convert.add_subparsers(dest="source", metavar="SOURCE")
    google = sources.add_parser(
        "google",
        help="Google's original TF1 checkpoint (google-research/albert, TF-Hub variables/variables); no TensorFlow needed",
    )
    google.add_argument("checkpoint", metavar="CKPT_PREFIX", help="checkpoint prefix, e.g. albert_base/model.ckpt-best")
    google.add_argument("--config", required=True, help="Google's albert_config.json")
    google.add_argument("--spm", help="Google's SentencePiece model (30k-clean.model), saved as the tokenizer")
    google.add_argument("--output", "-o", required=True, help="the folder to write")
    google.add_argument("--no-verify", action="store_true", help="skip the crc32c checks of the checkpoint files")
    google.set_defaults(func=_convert_google)
    # `albertkit convert` alone: cli.main reports the missing source as one error line.


def _convert_google(args: argparse.Namespace) -> int:
    from albertkit.formats.google import convert_google_checkpoint

    convert_google_checkpoint(args.checkpoint, args.config, args.output, spm=args.spm, verify=not args.no_verify)
    return 0
