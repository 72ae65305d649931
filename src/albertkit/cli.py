"""The ``albertkit`` command line: a table of subcommands, each a thin shell over a public function.

Each feature module registers its own subcommands through ``register(subparsers)``; heavy imports
happen inside the command handlers, so ``albertkit --help`` is fast.

    $ albertkit fill-mask "Hello I'm a [MASK] model."
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

# module -> it defines register(subparsers) adding one or more subcommands.
COMMAND_MODULES = (
    "albertkit.pipelines.commands",
    "albertkit.tokenization.commands",
    "albertkit.pretraining.commands",
    "albertkit.finetuning.commands",
    "albertkit.export_commands",
    "albertkit.model_card.commands",
    "albertkit.keras.commands",  # after export_commands: adds `export savedmodel`
    "albertkit.formats.commands",
    "albertkit.serving.commands",
)


class CommandError(Exception):
    """An error a command reports as one line on stderr, with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    from albertkit import __version__

    parser = argparse.ArgumentParser(prog="albertkit", description="ALBERT end to end: inference, pretraining, fine-tuning.")
    parser.add_argument("--version", action="version", version=f"albertkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a feature not yet built in this checkout
            if exc.name != module:
                raise
            continue
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    # albertkit's own progress at INFO; other libraries (ONNX Runtime's quantizer logs 29 INFO lines)
    # only from WARNING on, unless --verbose.
    logging.basicConfig(level=level if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("albertkit").setLevel(level)
    if not getattr(args, "func", None):
        if args.command:  # a command with sub-choices (export, convert) given none
            sys.stderr.write(f"albertkit {args.command}: error: name what to {args.command} (see albertkit {args.command} --help)\n")
        else:
            parser.print_help(sys.stderr)
        return 2
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        sys.stderr.write("albertkit: interrupted\n")
        return 130
    except (CommandError, OSError, ValueError) as exc:
        # Bad input (files, fields, arguments, checkpoints: library errors are ValueError/OSError
        # subclasses such as CheckpointError, ConfigError, ModelNotFoundError).
        if args.verbose:  # the full traceback, for bug reports
            raise
        sys.stderr.write(f"albertkit {args.command}: error: {_one_line(exc)}\n")
        return 2
    except Exception as exc:  # a bug: still one line for the user, the traceback on request
        if args.verbose:
            raise
        if "torch.distributed" in sys.modules:  # under torchrun: a peer process may have failed first
            from albertkit.distributed import peer_stopped_message

            if (line := peer_stopped_message(exc)) is not None:
                sys.stderr.write(f"albertkit {args.command}: {line}\n")
                return 1
        sys.stderr.write(
            f"albertkit {args.command}: internal error: {type(exc).__name__}: {_one_line(exc)} "
            f"(a bug in albertkit; rerun with --verbose for the traceback and report it)\n"
        )
        return 1
    return int(result or 0)


def _one_line(exc: BaseException, limit: int = 500) -> str:
    """The exception's message on one line, cut at ``limit`` characters (some carry whole inputs)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message if len(message) <= limit else message[: limit - 3] + "..."


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
