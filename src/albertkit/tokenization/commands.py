"""``albertkit train-tokenizer`` and ``albertkit tokenize``: thin shells over albertkit.tokenization.

    $ albertkit train-tokenizer corpus/*.txt --vocab-size 8000 --output my-tokenizer
    $ albertkit tokenize "Hello, my dog is cute" --model albert-base-v2
    {"input_ids": [2, 10975, 15, 51, 1952, 25, 10901, 3], ...}
    $ albertkit tokenize -i lines.txt --model my-tokenizer > ids.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BATCH_LINES = 4096


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train-tokenizer",
        help="train a SentencePiece vocabulary with ALBERT's settings",
        description="Train a SentencePiece unigram vocabulary with ALBERT's settings (<pad> 0, <unk> 1, "
        "[CLS] [SEP] [MASK] control symbols, ( ) \" - . – £ € user symbols) and save a tokenizer folder.",
    )
    train.add_argument("files", nargs="+", help="UTF-8 text files or folders (searched for *.txt), one sentence or paragraph per line")
    train.add_argument("--vocab-size", type=int, required=True, help="number of pieces (ALBERT: 30000)")
    train.add_argument("--output", "-o", required=True, help="folder to write spiece.model and configs into")
    train.add_argument("--max-sentences", type=int, default=None, help="use at most this many lines")
    train.add_argument("--cased", action="store_true", help="do not lowercase")
    train.add_argument("--keep-accents", action="store_true", help="do not strip accents")
    train.add_argument("--character-coverage", type=float, default=0.99995)
    train.add_argument("--threads", type=int, default=None)
    train.add_argument("--fallback-encoding", default=None, help="decode non-UTF-8 lines with this encoding (e.g. cp1252) instead of failing")
    train.set_defaults(func=_train)

    tok = subparsers.add_parser(
        "tokenize",
        help="text or a file of lines -> token ids as JSON",
        description="Print the model inputs for a text as one JSON object, or for every line of a file as JSON lines.",
    )
    tok.add_argument("text", nargs="?", help="the text (or use --file)")
    tok.add_argument("--pair", default=None, help="a second text (sentence pair)")
    tok.add_argument("-i", "--input", "--file", dest="file", metavar="FILE", default=None,
                     help="a UTF-8 text file: one JSON line of ids per line")
    tok.add_argument("--model", "-m", default=None,
                     help="tokenizer folder, spiece.model path, or hub name (default albert-base-v2, else the shipped model)")
    tok.add_argument("--no-special-tokens", action="store_true", help="do not add [CLS] and [SEP]")
    tok.add_argument("--tokens", action="store_true", help="also print the pieces")
    tok.add_argument("--offsets", action="store_true", help="also print character offsets (single text only)")
    tok.add_argument("--max-length", type=int, default=None, help="truncate to this many tokens")
    tok.set_defaults(func=_tokenize)


def _train(args: argparse.Namespace) -> int:
    from albertkit.tokenization import train_tokenizer

    from albertkit.cli import CommandError

    files: list[Path] = []
    for item in map(Path, args.files):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*.txt") if p.is_file())
            if not found:
                raise CommandError(f"{item}: no *.txt files in this folder")
            files += found
        else:
            files.append(item)
    out = train_tokenizer(
        files,
        args.vocab_size,
        args.output,
        do_lower_case=not args.cased,
        keep_accents=args.keep_accents,
        character_coverage=args.character_coverage,
        max_sentences=args.max_sentences,
        num_threads=args.threads,
        fallback_encoding=args.fallback_encoding,
    )
    sys.stdout.write(json.dumps({"output": str(out), "vocab_size": args.vocab_size}) + "\n")
    return 0


def _tokenize(args: argparse.Namespace) -> int:
    from albertkit.cli import CommandError
    from albertkit.tokenization import AlbertTokenizer

    if (args.text is None) == (args.file is None):
        raise CommandError("give either a TEXT argument or -i FILE")
    if args.file is not None and (args.pair is not None or args.offsets):
        raise CommandError("--pair and --offsets work with a TEXT argument, not -i FILE")
    if args.max_length is not None and args.max_length < 1:
        raise CommandError(f"--max-length must be positive, got {args.max_length}")
    from albertkit.pipelines.base import resolve_model  # albert-base-v2, or offline the shipped model

    tok = AlbertTokenizer.from_pretrained(resolve_model(args.model))
    add = not args.no_special_tokens
    if args.text is not None:
        enc = tok(args.text, args.pair, add_special_tokens=add, return_offsets_mapping=args.offsets,
                  truncation=args.max_length is not None, max_length=args.max_length)
        out = {k: v for k, v in enc.items()}
        if args.tokens:
            out["tokens"] = enc.tokens()
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return 0
    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"{path}: no such file")

    def flush(lines: list[str]) -> None:
        for ids in tok.encode_batch(lines):
            if args.max_length is not None:
                ids = ids[: max(args.max_length - (2 if add else 0), 0)]
            if add:
                ids = tok.build_inputs_with_special_tokens(ids)
            row: dict = {"input_ids": ids}
            if args.tokens:
                row["tokens"] = tok.convert_ids_to_tokens(ids)
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")

    batch: list[str] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                batch.append(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as exc:
                raise CommandError(f"{path}, line {lineno}: invalid UTF-8 at byte {exc.start}") from None
            if len(batch) >= BATCH_LINES:
                flush(batch)
                batch = []
    if batch:
        flush(batch)
    return 0
