"""``train_tokenizer``: a SentencePiece unigram vocabulary with ALBERT's ``spm_train`` settings.

    >>> train_tokenizer(["corpus/a.txt"], vocab_size=8000, output_dir="my-tok")  # doctest: +SKIP
    PosixPath('my-tok')
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from albertkit.tokenization.encoder import TokenizerError
from albertkit.tokenization.normalizer import Normalizer
from albertkit.tokenization.tokenizer import VOCAB_FILE, AlbertTokenizer

__all__ = ["ALBERT_CONTROL_SYMBOLS", "ALBERT_USER_SYMBOLS", "train_tokenizer"]

logger = logging.getLogger(__name__)

# ALBERT's user-defined symbols (ids 5..12 of the released vocab).
ALBERT_USER_SYMBOLS = ("(", ")", '"', "-", ".", "\u2013", "\u00a3", "\u20ac")
ALBERT_CONTROL_SYMBOLS = ("[CLS]", "[SEP]", "[MASK]")


def _iter_training_lines(
    files: Sequence[Path], normalize: Any, max_sentences: int | None, bar: Any, fallback_encoding: str | None = None
) -> Iterable[str]:
    """Normalised non-empty lines of ``files``; invalid UTF-8 raises naming the file and line, unless
    ``fallback_encoding`` decodes it."""
    count = 0
    for path in files:
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                bar.update(len(raw))
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    try:
                        if fallback_encoding is None:
                            raise
                        line = raw.decode(fallback_encoding)
                    except UnicodeDecodeError:
                        raise TokenizerError(
                            f"{path}, line {lineno}: invalid UTF-8 at byte {exc.start} (re-encode the file as UTF-8, "
                            f"or pass a fallback encoding such as --fallback-encoding cp1252)"
                        ) from None
                line = normalize(line)
                if not line:
                    continue
                yield line
                count += 1
                if max_sentences is not None and count >= max_sentences:
                    return


def train_tokenizer(
    files: str | os.PathLike | Sequence[str | os.PathLike],
    vocab_size: int,
    output_dir: str | os.PathLike,
    *,
    do_lower_case: bool = True,
    keep_accents: bool = False,
    user_defined_symbols: Sequence[str] = ALBERT_USER_SYMBOLS,
    control_symbols: Sequence[str] = ALBERT_CONTROL_SYMBOLS,
    character_coverage: float = 0.99995,
    max_sentences: int | None = None,
    max_sentence_length: int = 16384,
    num_threads: int | None = None,
    seed_sentencepiece_size: int = 1_000_000,
    progress: bool = True,
    fallback_encoding: str | None = None,
) -> Path:
    """Train a SentencePiece unigram vocabulary with ALBERT's settings and save it as a tokenizer folder.

        >>> train_tokenizer(["corpus/a.txt", "corpus/b.txt"], vocab_size=8000, output_dir="my-tok")  # doctest: +SKIP
        PosixPath('my-tok')
        >>> AlbertTokenizer.from_pretrained("my-tok")  # doctest: +SKIP

    ALBERT's ``spm_train`` flags: unigram model, ``<pad>`` 0, ``<unk>`` 1, no BOS/EOS, control
    symbols ``[CLS] [SEP] [MASK]`` (2..4), the user-defined symbols ``( ) " - . – £ €`` (5..12),
    character coverage 0.99995. Lines are normalised as the tokenizer will normalise them
    (lowercase, accents stripped, unless told otherwise), so the vocabulary matches what it sees.
    Files must be UTF-8 text, one sentence or paragraph per line; lines that are not UTF-8 are
    decoded with ``fallback_encoding`` (e.g. ``"cp1252"``) when it is given, else an error.
    """
    import io

    import sentencepiece as spm
    from tqdm.auto import tqdm

    from albertkit.utils import atomic_folder

    if isinstance(files, (str, os.PathLike)):
        files = [files]
    paths = [Path(f) for f in files]
    if not paths:
        raise TokenizerError("train_tokenizer: no input files")
    for path in paths:
        if not path.is_file():
            raise TokenizerError(f"{path}: training file not found")
    n_meta = 2 + len(control_symbols) + len(user_defined_symbols)
    if not isinstance(vocab_size, int) or vocab_size <= n_meta:
        raise TokenizerError(f"vocab_size must be an integer above {n_meta} (the special and user symbols), got {vocab_size!r}")
    if max_sentences is not None and max_sentences <= 0:
        raise TokenizerError(f"max_sentences must be positive, got {max_sentences}")

    # the lines as the tokenizer will normalise them, so the vocabulary matches what it sees
    normalize = Normalizer(do_lower_case=do_lower_case, remove_space=True, keep_accents=keep_accents)
    total = sum(p.stat().st_size for p in paths)
    model = io.BytesIO()
    with tqdm(total=total, unit="B", unit_scale=True, desc="reading corpus", disable=not progress) as bar:
        failure: list[Exception] = []

        def lines() -> Iterable[str]:
            # SentencePiece would wrap an exception raised inside its iterator into an opaque
            # RuntimeError; stop the iteration instead and re-raise the original afterwards.
            try:
                yield from _iter_training_lines(paths, normalize, max_sentences, bar, fallback_encoding)
            except TokenizerError as exc:
                failure.append(exc)

        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=lines(),
                model_writer=model,
                model_type="unigram",
                vocab_size=vocab_size,
                pad_id=0,
                unk_id=1,
                bos_id=-1,
                eos_id=-1,
                control_symbols=list(control_symbols),
                user_defined_symbols=list(user_defined_symbols),
                character_coverage=character_coverage,
                max_sentence_length=max_sentence_length,
                seed_sentencepiece_size=seed_sentencepiece_size,
                num_threads=num_threads or (os.cpu_count() or 1),
                minloglevel=0 if logger.isEnabledFor(logging.DEBUG) else 2,
            )
        except RuntimeError as exc:
            if failure:
                raise failure[0] from None
            msg = str(exc)
            if "Vocabulary size" in msg or "vocab_size" in msg:
                raise TokenizerError(
                    f"the training text is too small for vocab_size={vocab_size}: {msg.strip()} "
                    "(use a smaller vocab_size or more text)"
                ) from None
            raise TokenizerError(f"SentencePiece training failed: {msg.strip()}") from None
    if failure:
        raise failure[0]
    out = Path(output_dir)
    with atomic_folder(out) as tmp:
        (tmp / VOCAB_FILE).write_bytes(model.getvalue())
        AlbertTokenizer(tmp / VOCAB_FILE, do_lower_case=do_lower_case, keep_accents=keep_accents).save_pretrained(tmp)
    logger.info("trained a %d-piece tokenizer into %s", vocab_size, out)
    return out
