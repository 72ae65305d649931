"""ALBERT's SentencePiece tokenizer: normalise -> split special tokens -> pieces -> ids.

Ids are identical to Hugging Face transformers' slow (SentencePiece) ``AlbertTokenizer`` of the
4.x series, which defines what ALBERT checkpoints were trained on; character offsets into the
original text are identical to the fast (``tokenizers``) one wherever both produce the same pieces.

    >>> tok = AlbertTokenizer.from_pretrained("albert-base-v2")  # doctest: +SKIP
    >>> tok("Hello, my dog is cute")["input_ids"]  # doctest: +SKIP
    [2, 10975, 15, 51, 1952, 25, 10901, 3]

Pipeline per text (see ALBERT_REFERENCE.md section 2):

1. special-token strings (``[CLS] [SEP] [MASK] <pad> <unk>``) are split out of the raw text;
   ``[MASK]`` absorbs the whitespace before it;
2. each remaining chunk: strip and collapse whitespace, `````` and ``''`` -> ``"``, NFKD and drop
   combining marks (unless ``keep_accents``), lowercase (unless ``do_lower_case=False``);
3. SentencePiece encodes the chunk (its own nmt_nfkc normaliser runs inside, in C++);
4. the digit-comma rule: a piece longer than one character that ends in a digit and ``,`` is
   re-encoded without the comma and the comma becomes its own piece.

Deliberate differences from transformers (each tested in tests/test_tokenization_*.py):

* ``tokenizer(text, "")`` is a pair with an empty second text (``[CLS] A [SEP] [SEP]``), as in the
  4.x slow tokenizer; transformers 5 treats an empty ``text_pair`` as no pair at all.
* Truncation of pairs with ``longest_first`` cuts as Google's ``_truncate_seq_pair`` and the 4.x
  slow tokenizer do (one token at a time from the longer, from the second on a tie), not as
  ``tokenizers`` (transformers 5) splits the budget: 231 + 277 pieces into 125 keep 63 + 62, not 62 + 63.
* With ``return_overflowing_tokens=True`` a pair must be truncated ``only_first`` or
  ``only_second`` (which sequence to window is otherwise ambiguous); ``longest_first`` raises.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ["AlbertTokenizer", "BatchEncoding", "TokenizerError", "train_tokenizer"]

logger = logging.getLogger(__name__)

SPIECE_UNDERLINE = "\u2581"
VOCAB_FILE = "spiece.model"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
TOKENIZER_FILE = "tokenizer.json"  # the `tokenizers` file; all that transformers 5 saves
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
# ALBERT's user-defined symbols (ids 5..12 of the released vocab).
ALBERT_USER_SYMBOLS = ("(", ")", '"', "-", ".", "\u2013", "\u00a3", "\u20ac")
ALBERT_CONTROL_SYMBOLS = ("[CLS]", "[SEP]", "[MASK]")


class TokenizerError(ValueError):
    """A tokenizer file or an input the tokenizer cannot use; the message names which."""


def _build_combining_table() -> dict[int, None]:
    # str.translate table that deletes every code point with a non-zero canonical combining class:
    # the same set as `unicodedata.combining(c) != 0` used by the reference, but applied in C.
    return {cp: None for cp in range(sys.maxunicode + 1) if unicodedata.combining(chr(cp))}


_COMBINING = _build_combining_table()
# Python's str.split() and re's \s agree on what whitespace is (Py_UNICODE_ISSPACE).
_WORD_RE = re.compile(r"\S+")


def _is_digit_comma(piece: str) -> bool:
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()


# ----------------------------------------------------------------------------------------------
# BatchEncoding
# ----------------------------------------------------------------------------------------------


class BatchEncoding(dict):
    """The tokenizer's output: a dict of model inputs plus word/sequence alignment per row.

        >>> enc = tok(["a question", "another"], padding=True, return_tensors="pt")  # doctest: +SKIP
        >>> enc["input_ids"].shape, enc.word_ids(0), enc.sequence_ids(0)  # doctest: +SKIP

    Keys: ``input_ids`` [B, T], ``token_type_ids``, ``attention_mask``, and on request
    ``special_tokens_mask``, ``offset_mapping`` [B, T, 2], ``overflow_to_sample_mapping`` [B].
    """

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        word_ids: list[list[int | None]] | None = None,
        sequence_ids: list[list[int | None]] | None = None,
        tokens: list[list[str]] | None = None,
        word_ids_fn: Any = None,
    ) -> None:
        super().__init__(data or {})
        self._word_ids = word_ids
        # computes word ids on first use when the encoding skipped the (slower) alignment pass
        self._word_ids_fn = word_ids_fn
        self._sequence_ids = sequence_ids
        self._tokens = tokens

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getstate__(self) -> dict[str, Any]:
        if self._word_ids is None and self._word_ids_fn is not None:  # a closure does not pickle
            self._word_ids = self._word_ids_fn()
            self._word_ids_fn = None
        return {"data": dict(self), "w": self._word_ids, "s": self._sequence_ids, "t": self._tokens}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.update(state["data"])
        self._word_ids, self._sequence_ids, self._tokens = state["w"], state["s"], state["t"]
        self._word_ids_fn = None

    def _row(self, table: list | None, batch_index: int, what: str) -> list:
        if table is None:
            raise ValueError(f"{what} is not available for this BatchEncoding (it was not made by AlbertTokenizer.__call__)")
        if not -len(table) <= batch_index < len(table):
            raise IndexError(f"batch_index {batch_index} out of range for a batch of {len(table)}")
        return table[batch_index]

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """Index of the whitespace-separated word (within its sequence) of each token; None for special tokens."""
        if self._word_ids is None and self._word_ids_fn is not None:
            self._word_ids = self._word_ids_fn()
            self._word_ids_fn = None
        return list(self._row(self._word_ids, batch_index, "word_ids"))

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """0 or 1 for tokens of the first or second sequence; None for special and padding tokens."""
        return list(self._row(self._sequence_ids, batch_index, "sequence_ids"))

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The pieces of one row (padding included)."""
        return list(self._row(self._tokens, batch_index, "tokens"))

    def token_to_word(self, batch_index: int, token_index: int | None = None) -> int | None:
        if token_index is None:
            batch_index, token_index = 0, batch_index
        return self.word_ids(batch_index)[token_index]

    def to(self, device: Any) -> "BatchEncoding":
        """Move every tensor value to ``device`` (in place; returns self, as transformers does)."""
        for key, value in self.items():
            if hasattr(value, "to") and hasattr(value, "device"):
                self[key] = value.to(device)
        return self

    @property
    def n_sequences(self) -> int:
        return len(self._sequence_ids or [])


# ----------------------------------------------------------------------------------------------
# One encoded sequence with its alignment
# ----------------------------------------------------------------------------------------------


@dataclass
class _Seq:
    """Ids of one text (no special tokens) and, when asked, where each came from."""

    ids: list[int]
    offsets: list[tuple[int, int]] | None = None  # character spans in the original text
    words: list[int | None] | None = None  # whitespace-word index per token
    specials: list[bool] = field(default_factory=list)  # token is a special token found in the text


# ----------------------------------------------------------------------------------------------
# The tokenizer
# ----------------------------------------------------------------------------------------------


class AlbertTokenizer:
    """ALBERT's SentencePiece tokenizer with the Hugging Face tokenizer interface.

        >>> tok = AlbertTokenizer("spiece.model")  # doctest: +SKIP
        >>> tok.tokenize("I was born in 92000, and this is falsé.")  # doctest: +SKIP
        ['▁i', '▁was', '▁born', '▁in', '▁9', '2000', ',', '▁and', '▁this', '▁is', '▁false', '.']

    Args:
        vocab_file: path of the SentencePiece model (``spiece.model``).
        do_lower_case: lowercase the text before SentencePiece (ALBERT's English models do).
        remove_space: strip the text and collapse runs of whitespace to one space.
        keep_accents: keep accents; otherwise NFKD and drop combining marks.
        model_max_length: the length ``truncation=True`` / ``padding="max_length"`` use by default.
        model_proto: a serialized SentencePiece model to use instead of reading ``vocab_file``
            (then ``vocab_file`` only names where it came from, e.g. a ``tokenizer.json``).
    """

    vocab_files_names = {"vocab_file": VOCAB_FILE}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    padding_side = "right"
    truncation_side = "right"

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        do_lower_case: bool = True,
        remove_space: bool = True,
        keep_accents: bool = False,
        *,
        unk_token: str = "<unk>",
        sep_token: str = "[SEP]",
        pad_token: str = "<pad>",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        model_max_length: int = 512,
        num_threads: int | None = None,
        model_proto: bytes | None = None,
        **kwargs: Any,
    ) -> None:
        import sentencepiece as spm

        path = Path(vocab_file)
        self.sp = spm.SentencePieceProcessor()
        if model_proto is not None:  # rebuilt from another file (tokenizer.json); path names that file
            try:
                self.sp.LoadFromSerializedProto(model_proto)
            except (OSError, RuntimeError) as exc:
                raise TokenizerError(f"{path}: the SentencePiece model rebuilt from it does not load ({exc})") from None
        elif not path.is_file():
            raise TokenizerError(f"{path}: SentencePiece model not found")
        else:
            try:
                self.sp.Load(str(path))
            except (OSError, RuntimeError) as exc:  # sentencepiece raises OSError on a bad proto
                raise TokenizerError(f"{path}: not a valid SentencePiece model ({exc})") from None
        if self.sp.GetPieceSize() == 0:
            raise TokenizerError(f"{path}: the SentencePiece model has no pieces")
        self.vocab_file = str(path)
        self.do_lower_case = bool(do_lower_case)
        self.remove_space = bool(remove_space)
        self.keep_accents = bool(keep_accents)
        self.model_max_length = int(model_max_length)
        # Threads for SentencePiece's batch encoder; all cores unless told otherwise.
        self.num_threads = int(num_threads) if num_threads else (os.cpu_count() or 1)
        for key in kwargs:
            logger.debug("AlbertTokenizer: ignoring option %r", key)

        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        self.bos_token, self.eos_token = cls_token, sep_token  # transformers' aliases
        self._pieces = [self.sp.IdToPiece(i) for i in range(self.sp.GetPieceSize())]
        self._vocab = {p: i for i, p in enumerate(self._pieces)}
        for name in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
            token = getattr(self, name)
            if token not in self._vocab:
                raise TokenizerError(f"{path}: the vocabulary has no {name} {token!r}")
        self.all_special_tokens = [cls_token, sep_token, unk_token, pad_token, mask_token]
        self.all_special_ids = [self._vocab[t] for t in self.all_special_tokens]
        self._special_ids = frozenset(self.all_special_ids)
        # Special-token strings are cut out of the raw text first (longest first, case-sensitive).
        alts = sorted(set(self.all_special_tokens), key=len, reverse=True)
        self._special_re = re.compile("|".join(re.escape(t) for t in alts))
        self._special_first_chars = frozenset(t[0] for t in alts)
        # Tokens that eat the whitespace on their left, as transformers' AddedToken(lstrip=True).
        self._lstrip_tokens = frozenset({mask_token})
        self._digit_comma_ids = frozenset(i for i, p in enumerate(self._pieces) if _is_digit_comma(p))
        self._comma_id = self._vocab.get(",", self.unk_token_id)
        self._vanish_cache: dict[str, bool] = {" ": True}

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> "AlbertTokenizer":
        """Load from a folder (spiece.model + optional tokenizer_config.json / special_tokens_map.json),
        a hub name (through the Hugging Face cache), or a direct path to a ``.model`` file.
        A folder with ``tokenizer.json`` and no ``spiece.model`` (as transformers 5 saves it) loads
        through the SentencePiece model rebuilt from it (see albertkit.formats.tokenizer_json).

            >>> tok = AlbertTokenizer.from_pretrained("path/to/folder")  # doctest: +SKIP

        Keyword arguments override the saved configuration.
        """
        path = Path(name_or_path)
        if path.is_file():
            return cls(path, **kwargs)
        proto = None
        options: dict[str, Any] = {}  # what tokenizer.json's normaliser says, then the config files
        if path.is_dir():
            spiece = path / VOCAB_FILE
            if not spiece.is_file():
                if not (path / TOKENIZER_FILE).is_file():
                    raise TokenizerError(f"{path}: neither {VOCAB_FILE} nor {TOKENIZER_FILE} in this folder")
                # a folder saved by transformers 5: rebuild the SentencePiece model from tokenizer.json
                spiece = path / TOKENIZER_FILE
                proto, options = _from_tokenizer_json(spiece)
            folder: Path | None = path
        else:
            from albertkit.hub import resolve_first

            # ModelNotFoundError names what is missing
            spiece = resolve_first(name_or_path, (VOCAB_FILE, TOKENIZER_FILE))
            folder = spiece.parent
            if spiece.name == TOKENIZER_FILE:
                proto, options = _from_tokenizer_json(spiece)
        for fn in (SPECIAL_TOKENS_MAP_FILE, TOKENIZER_CONFIG_FILE):
            cfg_path = _optional_file(folder, name_or_path, fn)
            if cfg_path is None:
                continue
            try:
                data = json.loads(cfg_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise TokenizerError(f"{cfg_path}: cannot read ({exc})") from None
            if not isinstance(data, dict):
                raise TokenizerError(f"{cfg_path}: expected a JSON object")
            options.update(_config_options(data, cfg_path))
        options.update(kwargs)
        if proto is not None:
            options["model_proto"] = proto
        return cls(spiece, **options)

    def save_pretrained(self, folder: str | os.PathLike) -> tuple[str, ...]:
        """Write spiece.model, tokenizer.json, tokenizer_config.json and special_tokens_map.json (atomically).

        transformers' ``AlbertTokenizer`` / ``AutoTokenizer.from_pretrained(folder)`` load the result:
        transformers 4 from spiece.model, transformers 5 from tokenizer.json.
        """
        from albertkit.formats.tokenizer_json import tokenizer_json_from_spm_model
        from albertkit.utils import atomic_write_bytes, atomic_write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / VOCAB_FILE, self.sp.serialized_model_proto())
        special = {
            "bos_token": self.cls_token,
            "eos_token": self.sep_token,
            "unk_token": self.unk_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
            "cls_token": self.cls_token,
            "mask_token": {"content": self.mask_token, "lstrip": True, "rstrip": False, "normalized": False, "single_word": False},
        }
        config = {
            "tokenizer_class": "AlbertTokenizer",
            "do_lower_case": self.do_lower_case,
            "remove_space": self.remove_space,
            "keep_accents": self.keep_accents,
            "model_max_length": self.model_max_length,
            **special,
        }
        atomic_write_text(folder / SPECIAL_TOKENS_MAP_FILE, json.dumps(special, indent=2, ensure_ascii=False) + "\n")
        atomic_write_text(folder / TOKENIZER_CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        backend = tokenizer_json_from_spm_model(
            self.sp.serialized_model_proto(), do_lower_case=self.do_lower_case, keep_accents=self.keep_accents,
            cls_token=self.cls_token, sep_token=self.sep_token, mask_token=self.mask_token,
        )
        atomic_write_text(folder / TOKENIZER_FILE, json.dumps(backend, ensure_ascii=False))
        return tuple(str(folder / f) for f in (VOCAB_FILE, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE))

    # -- vocabulary --------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    def __len__(self) -> int:
        return len(self._pieces)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    @property
    def unk_token_id(self) -> int:
        return self._vocab[self.unk_token]

    @property
    def sep_token_id(self) -> int:
        return self._vocab[self.sep_token]

    @property
    def pad_token_id(self) -> int:
        return self._vocab[self.pad_token]

    @property
    def cls_token_id(self) -> int:
        return self._vocab[self.cls_token]

    @property
    def mask_token_id(self) -> int:
        return self._vocab[self.mask_token]

    bos_token_id = cls_token_id
    eos_token_id = sep_token_id

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {
            "bos_token": self.cls_token, "eos_token": self.sep_token, "unk_token": self.unk_token,
            "sep_token": self.sep_token, "pad_token": self.pad_token, "cls_token": self.cls_token,
            "mask_token": self.mask_token,
        }

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Piece(s) -> id(s); unknown pieces give the ``<unk>`` id."""
        if isinstance(tokens, str):
            return self._vocab.get(tokens, self.unk_token_id)
        unk = self.unk_token_id
        return [self._vocab.get(t, unk) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> str | list[str]:
        if isinstance(ids, (int, np.integer)):
            return self._piece(int(ids))
        ids = _as_id_list(ids)
        return [self._piece(i) for i in ids if not (skip_special_tokens and i in self._special_ids)]

    def _piece(self, i: int) -> str:
        if not 0 <= i < len(self._pieces):
            raise IndexError(f"token id {i} is out of range for a vocabulary of {len(self._pieces)}")
        return self._pieces[i]

    def word_start_mask(self) -> np.ndarray:
        """Bool [vocab]: True where a piece starts a word (begins with "▁") or is a special/control token.

        Whole-word masking groups a word-start piece with the non-start pieces after it.
        """
        mask = np.fromiter((p.startswith(SPIECE_UNDERLINE) for p in self._pieces), dtype=bool, count=len(self._pieces))
        for i in range(len(self._pieces)):
            if self.sp.IsControl(i) or self.sp.IsUnknown(i):
                mask[i] = True
        return mask

    def is_word_start(self, token_id: int) -> bool:
        piece = self._piece(int(token_id))
        return piece.startswith(SPIECE_UNDERLINE) or self.sp.IsControl(int(token_id)) or self.sp.IsUnknown(int(token_id))

    # -- normalisation -----------------------------------------------------------------------

    def _normalize(self, chunk: str) -> str:
        """Steps 1-4 of the reference pipeline for one chunk without special tokens."""
        if self.do_lower_case:
            # transformers 4.x lowercases the raw text before its own normalisation, one character
            # at a time (so a word-final capital sigma becomes "σ", not "ς"); keep both.
            chunk = (chunk.replace("\u03a3", "\u03c3") if "\u03a3" in chunk else chunk).lower()
        if self.remove_space:
            chunk = " ".join(chunk.split())
        if "``" in chunk or "''" in chunk:
            chunk = chunk.replace("``", '"').replace("''", '"')
        if not self.keep_accents and not chunk.isascii():
            chunk = unicodedata.normalize("NFKD", chunk).translate(_COMBINING)
        if self.do_lower_case:
            chunk = chunk.lower()
        return chunk

    def _split_specials(self, text: str) -> list[tuple[str, int, bool]]:
        """Raw text -> [(chunk, start, is_special)] with special-token strings cut out."""
        if not any(c in text for c in self._special_first_chars) or not self._special_re.search(text):
            return [(text, 0, False)]
        parts: list[tuple[str, int, bool]] = []
        pos = 0
        for m in self._special_re.finditer(text):
            left = text[pos : m.start()]
            if m.group() in self._lstrip_tokens:
                left = left.rstrip()
            if left:
                parts.append((left, pos, False))
            parts.append((m.group(), m.start(), True))
            pos = m.end()
        if pos < len(text):
            parts.append((text[pos:], pos, False))
        return parts

    def _fix_digit_comma(self, ids: list[int]) -> list[int]:
        """Apply the reference's digit-comma rule to one chunk's ids."""
        out: list[int] = []
        for i in ids:
            if i not in self._digit_comma_ids:
                out.append(i)
                continue
            out.extend(self._split_digit_comma(self._pieces[i]))
        return out

    def _split_digit_comma(self, piece: str) -> list[int]:
        sub = self.sp.EncodeAsPieces(piece[:-1].replace(SPIECE_UNDERLINE, ""))
        if piece[0] != SPIECE_UNDERLINE and sub and sub[0][0] == SPIECE_UNDERLINE:
            # The original piece continued a word: drop the word-start marker the re-encoding added.
            sub = sub[1:] if len(sub[0]) == 1 else [sub[0][1:], *sub[1:]]
        unk = self.unk_token_id
        return [self._vocab.get(p, unk) for p in sub] + [self._comma_id]

    # -- fast bulk path ----------------------------------------------------------------------

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = False) -> list[list[int]]:
        """Ids for many texts at once, using SentencePiece's multi-threaded C++ batch encoder.

            >>> tok.encode_batch(["first line", "second line"])  # doctest: +SKIP
            [[64, 293], [153, 293]]

        Identical to ``[tok.encode(t, add_special_tokens=...) for t in texts]``; this is the path for
        pretraining corpora.
        """
        if isinstance(texts, str):
            raise TypeError("encode_batch expects a list of str, got a single str (use encode())")
        chunks: list[str] = []
        # Per text: list of (index into chunks or -1, special id)
        plan: list[list[tuple[int, int]] | int] = []
        for n, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"encode_batch: texts[{n}] is {type(text).__name__}, expected str")
            parts = self._split_specials(text)
            if len(parts) == 1 and not parts[0][2]:
                plan.append(len(chunks))
                chunks.append(self._normalize(text))
                continue
            items: list[tuple[int, int]] = []
            for chunk, _, special in parts:
                if special:
                    items.append((-1, self._vocab[chunk]))
                else:
                    items.append((len(chunks), 0))
                    chunks.append(self._normalize(chunk))
            plan.append(items)
        # A few chunks encode faster on the calling thread: SentencePiece starts its worker threads
        # per call, and right after a model forward they compete with PyTorch's spinning OpenMP threads.
        threads = self.num_threads if len(chunks) >= 32 else 1
        encoded = self.sp.encode(chunks, out_type=int, num_threads=threads) if chunks else []
        dc = self._digit_comma_ids
        for k, ids in enumerate(encoded):
            if not dc.isdisjoint(ids):
                encoded[k] = self._fix_digit_comma(ids)
        out: list[list[int]] = []
        cls_id, sep_id = self.cls_token_id, self.sep_token_id
        for entry in plan:
            if isinstance(entry, int):
                ids = encoded[entry]
            else:
                ids = []
                for k, special_id in entry:
                    if k < 0:
                        ids.append(special_id)
                    else:
                        ids.extend(encoded[k])
            out.append([cls_id, *ids, sep_id] if add_special_tokens else list(ids))
        return out

    # -- aligned path (offsets, word ids) -----------------------------------------------------

    def _encode_aligned(self, text: str) -> _Seq:
        """Ids of one text plus character offsets into ``text`` and word indices.

        A word is what transformers' fast tokenizer calls one: a run of pieces from one that starts
        with "▁" up to the next such piece; a special token found in the text is a word of its own.
        """
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        words: list[int | None] = []
        specials: list[bool] = []
        word = -1
        for chunk, start, end, special in self._split_specials_spans(text):
            if special:
                word += 1
                ids.append(self._vocab[chunk])
                offsets.append((start, end))
                words.append(word)
                specials.append(True)
                continue
            c_ids, c_offs, c_starts = self._encode_chunk_aligned(chunk, start)
            for k, is_start in enumerate(c_starts):
                if is_start or k == 0:
                    word += 1
                words.append(word)
            ids.extend(c_ids)
            offsets.extend(c_offs)
            specials.extend([False] * len(c_ids))
        return _Seq(ids, offsets, words, specials)

    def _split_specials_spans(self, text: str) -> list[tuple[str, int, int, bool]]:
        """Like :meth:`_split_specials` with (start, end) per part; a token that absorbs the
        whitespace before it spans that whitespace too (as transformers' fast tokenizer reports)."""
        out = []
        for chunk, start, special in self._split_specials(text):
            end = start + len(chunk)
            if special and chunk in self._lstrip_tokens:
                while start > 0 and text[start - 1].isspace():
                    start -= 1
            out.append((chunk, start, end, special))
        return out

    def _vanishes(self, ch: str) -> bool:
        """True for a character SentencePiece's normaliser turns into nothing (or a space)."""
        v = self._vanish_cache.get(ch)
        if v is None:
            v = ch.isspace() or not self.sp.encode(ch)
            self._vanish_cache[ch] = v
        return v

    def _normalize_aligned(self, chunk: str, base: int) -> tuple[str, list[int], list[int]]:
        """Normalise like :meth:`_normalize` and return, per normalised character, its original span."""
        if self.remove_space:
            matches = [(m.start(), m.group()) for m in _WORD_RE.finditer(chunk)]
        else:
            matches = [(0, chunk)] if chunk else []
        norm_parts: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        for w, (pos, word) in enumerate(matches):
            if w and self.remove_space:
                # the single space that replaces the run of whitespace before this word
                prev_end = matches[w - 1][0] + len(matches[w - 1][1])
                norm_parts.append(" ")
                starts.append(base + prev_end)
                ends.append(base + pos)
            simple = word.isascii() and "``" not in word and "''" not in word
            if simple:
                norm_parts.append(word.lower() if self.do_lower_case else word)
                starts.extend(range(base + pos, base + pos + len(word)))
                ends.extend(range(base + pos + 1, base + pos + len(word) + 1))
                continue
            # char by char; `` and '' become one character spanning two
            i = 0
            pieces: list[str] = []
            while i < len(word):
                two = word[i : i + 2]
                if two == "``" or two == "''":
                    # transformers' fast tokenizer aligns the replacing quote with the second character
                    pieces.append('"')
                    starts.append(base + pos + i + 1)
                    ends.append(base + pos + i + 2)
                    i += 2
                    continue
                width = 1
                out = word[i].lower() if self.do_lower_case else word[i]
                if not self.keep_accents:
                    out = unicodedata.normalize("NFKD", out).translate(_COMBINING)
                if self.do_lower_case:
                    out = out.lower()
                pieces.append(out)
                s = base + pos + i
                starts.extend([s] * len(out))
                ends.extend([s + width] * len(out))
                i += width
            # the whole-word result decides the characters (context rules like final sigma);
            # the per-character pass only decides the alignment
            whole = self._normalize(word) if self.remove_space else "".join(pieces)
            if len(whole) != sum(len(p) for p in pieces):  # pragma: no cover - defensive
                whole = "".join(pieces)
            norm_parts.append(whole)
        return "".join(norm_parts), starts, ends

    def _encode_chunk_aligned(self, chunk: str, base: int) -> tuple[list[int], list[tuple[int, int]], list[bool]]:
        """Ids, original-text offsets, and "starts a word" flags for one chunk without special tokens."""
        norm, starts, ends = self._normalize_aligned(chunk, base)
        if not norm:
            return [], [], []
        proto = self.sp.encode(norm, return_type="proto")
        if norm.isascii():
            byte_to_char = None
        else:
            byte_to_char = []
            for ci, ch in enumerate(norm):
                byte_to_char.extend([ci] * len(ch.encode("utf-8")))
            byte_to_char.append(len(norm))
        ids: list[int] = []
        offs: list[tuple[int, int]] = []
        word_starts: list[bool] = []
        n = len(norm)
        vanishes = self._vanishes

        def to_char(b: int) -> int:
            return b if byte_to_char is None else byte_to_char[b]

        for p in proto.pieces:
            cb, ce = to_char(p.begin), to_char(p.end)
            # the span without the whitespace SentencePiece folded into "▁" and without characters its
            # normaliser deletes (controls, zero-width marks), which it attributes to a neighbouring piece
            while cb < ce and vanishes(norm[cb]):
                cb += 1
            while ce > cb and vanishes(norm[ce - 1]):
                ce -= 1
            if cb >= ce:
                # a lone "▁": transformers' fast tokenizer maps it to the first character after it
                cb = to_char(p.end)
                while cb < n and vanishes(norm[cb]):
                    cb += 1
                cb = min(cb, n - 1)
                ce = cb + 1
            if p.id not in self._digit_comma_ids:
                ids.append(p.id)
                offs.append((starts[cb], ends[ce - 1]))
                word_starts.append(p.piece.startswith(SPIECE_UNDERLINE))
                continue
            # digit-comma rule: spread the sub-pieces over the span by their lengths
            cur = cb
            for k, sub in enumerate(self._split_digit_comma(p.piece)):
                length = max(len(self._pieces[sub].lstrip(SPIECE_UNDERLINE)), 1)
                stop = min(cur + length, ce)
                if stop <= cur:  # defensive: never an empty or inverted span
                    cur, stop = max(ce - 1, cb), ce
                ids.append(sub)
                offs.append((starts[cur], ends[stop - 1]))
                word_starts.append(k == 0 and p.piece.startswith(SPIECE_UNDERLINE))
                cur = stop
        return ids, offs, word_starts

    # -- single-text API -----------------------------------------------------------------------

    def tokenize(self, text: str, **kwargs: Any) -> list[str]:
        """Text -> pieces (no special tokens added).

        An unknown character shows as itself (as transformers shows it); its id is ``<unk>``'s.
        """
        _check_text(text, "text")
        out: list[str] = []
        for chunk, _, special in self._split_specials(text):
            if special:
                out.append(chunk)
                continue
            for piece in self.sp.encode(self._normalize(chunk), out_type=str):
                if _is_digit_comma(piece) and self._vocab.get(piece) in self._digit_comma_ids:
                    out.extend(self._pieces[i] for i in self._split_digit_comma(piece))
                else:
                    out.append(piece)
        return out

    def _encode_ids(self, text: str) -> list[int]:
        _check_text(text, "text")
        return self.encode_batch([text])[0]

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        add_special_tokens: bool = True,
        truncation: bool | str = False,
        max_length: int | None = None,
        **kwargs: Any,
    ) -> list[int]:
        """Text (and optional pair) -> ids with ``[CLS] A [SEP] (B [SEP])``.

            >>> tok.encode("Hello, my dog is cute")  # doctest: +SKIP
            [2, 10975, 15, 51, 1952, 25, 10901, 3]
        """
        enc = self(text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation,
                   max_length=max_length, return_attention_mask=False, return_token_type_ids=False, **kwargs)
        return enc["input_ids"]

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + list(token_ids_0) + sep
        return cls + list(token_ids_0) + sep + list(token_ids_1) + sep

    def get_special_tokens_mask(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None, already_has_special_tokens: bool = False
    ) -> list[int]:
        if already_has_special_tokens:
            return [1 if i in (self.cls_token_id, self.sep_token_id) else 0 for i in token_ids_0]
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1] + [0] * len(token_ids_1) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        first = [0] * (len(token_ids_0) + 2)
        if token_ids_1 is None:
            return first
        return first + [1] * (len(token_ids_1) + 1)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 3 if pair else 2

    # -- decoding --------------------------------------------------------------------------------

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Pieces -> text as transformers decodes ALBERT: "▁" is a space, one leading space dropped.

        Special tokens are glued to their neighbours (``cute[MASK] .[SEP]``), as in transformers 4 and 5.
        """
        text = "".join(tokens).replace(SPIECE_UNDERLINE, " ")
        return text[1:] if text.startswith(" ") else text

    def decode(self, token_ids: Any, skip_special_tokens: bool = False, **kwargs: Any) -> str:
        """Ids -> text. ``decode(encode(s), skip_special_tokens=True)`` gives the normalised ``s``.

            >>> tok.decode([2, 10975, 15, 51, 1952, 25, 10901, 3], skip_special_tokens=True)  # doctest: +SKIP
            'hello, my dog is cute'
        """
        ids = _as_id_list(token_ids)
        if ids and isinstance(ids[0], list):
            raise TypeError("decode expects one sequence of ids; use batch_decode for a batch")
        tokens = self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens)
        return self.convert_tokens_to_string(tokens)

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False, **kwargs: Any) -> list[str]:
        rows = _as_id_list(sequences)
        return [self.decode(row, skip_special_tokens=skip_special_tokens) for row in rows]

    # -- __call__ ----------------------------------------------------------------------------------

    def __call__(
        self,
        text: str | Sequence[str] | Sequence[Sequence[str]],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool = True,
        return_token_type_ids: bool = True,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_overflowing_tokens: bool = False,
        return_length: bool = False,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Encode a text, a pair, or a batch of either, into model inputs.

            >>> enc = tok(["what is albert?"], ["ALBERT is a lite BERT."], truncation="only_second",
            ...           max_length=32, padding="max_length", return_tensors="pt")  # doctest: +SKIP

        Returns a :class:`BatchEncoding`; unbatched input gives flat lists (unless overflowing
        windows are returned, which always makes a batch, as in transformers).
        """
        texts, pairs, batched = _normalize_inputs(text, text_pair)
        padding_mode = _padding_mode(padding)
        trunc_mode = _truncation_mode(truncation)
        if trunc_mode is None and max_length is not None and padding_mode != "max_length":
            trunc_mode = "longest_first"  # transformers does this too (with a warning)
        if trunc_mode is not None and max_length is None:
            max_length = self.model_max_length
        if padding_mode == "max_length" and max_length is None:
            max_length = self.model_max_length
        if max_length is not None and max_length < 0:
            raise ValueError(f"max_length must be >= 0, got {max_length}")
        if pad_to_multiple_of is not None and pad_to_multiple_of <= 0:
            raise ValueError(f"pad_to_multiple_of must be positive, got {pad_to_multiple_of}")
        if return_tensors not in (None, *TENSOR_TYPES):
            raise ValueError(f"return_tensors must be None, 'pt', 'np', 'tf' or 'jax', got {return_tensors!r}")
        if stride < 0:
            raise ValueError(f"stride must be >= 0, got {stride}")

        if return_offsets_mapping:
            first = [self._encode_aligned(t) for t in texts]
            second = [self._encode_aligned(t) for t in pairs] if pairs is not None else None
        else:
            # ids only, through the batch encoder; word ids are computed if and when asked for
            all_ids = self.encode_batch(texts + (pairs or []))
            first = [_Seq(ids) for ids in all_ids[: len(texts)]]
            second = [_Seq(ids) for ids in all_ids[len(texts) :]] if pairs is not None else None

        rows: list[dict[str, list]] = []
        row_words: list[list[int | None]] = []
        row_seqs: list[list[int | None]] = []
        sample_map: list[int] = []
        for n, a in enumerate(first):
            b = second[n] if second is not None else None
            windows = self._truncate(a, b, trunc_mode, max_length, stride, return_overflowing_tokens, add_special_tokens)
            for wa, wb in windows:
                row, words, seqs = self._assemble(wa, wb, add_special_tokens)
                rows.append(row)
                row_words.append(words)
                row_seqs.append(seqs)
                sample_map.append(n)

        # padding
        if padding_mode is not None:
            longest = max((len(r["input_ids"]) for r in rows), default=0)
            target = max_length if padding_mode == "max_length" else longest
            if pad_to_multiple_of and target % pad_to_multiple_of:
                target += pad_to_multiple_of - target % pad_to_multiple_of
            for r, words, seqs in zip(rows, row_words, row_seqs):
                n_pad = target - len(r["input_ids"])
                if n_pad <= 0:
                    continue
                r["input_ids"] += [self.pad_token_id] * n_pad
                r["token_type_ids"] += [0] * n_pad
                r["attention_mask"] += [0] * n_pad
                r["special_tokens_mask"] += [1] * n_pad
                r["offset_mapping"] += [(0, 0)] * n_pad
                words += [None] * n_pad
                seqs += [None] * n_pad

        keys = ["input_ids"]
        if return_token_type_ids:
            keys.append("token_type_ids")
        if return_attention_mask:
            keys.append("attention_mask")
        if return_special_tokens_mask:
            keys.append("special_tokens_mask")
        if return_offsets_mapping:
            keys.append("offset_mapping")
        data: dict[str, Any] = {k: [r[k] for r in rows] for k in keys}
        if return_length:
            data["length"] = [len(r["input_ids"]) for r in rows]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample_map
        tokens = [[self._pieces[i] for i in r["input_ids"]] for r in rows]
        # a single text gives flat lists, as in transformers; tensors and overflow windows keep the batch axis
        unbatch = not batched and not return_overflowing_tokens and return_tensors is None
        if return_tensors is not None:
            lengths = {len(r["input_ids"]) for r in rows}
            if len(lengths) > 1:
                raise ValueError(
                    "cannot make a tensor of sequences of different lengths "
                    f"({min(lengths)}..{max(lengths)}); pass padding=True or padding='max_length'"
                )
            data = {k: _to_tensor(v, return_tensors) for k, v in data.items()}
        if unbatch:
            data = {k: v[0] for k, v in data.items()}
        word_ids_fn = None
        if not return_offsets_mapping:
            row_words = None  # type: ignore[assignment]

            def word_ids_fn() -> list[list[int | None]]:
                again = self(text, text_pair, add_special_tokens=add_special_tokens, padding=padding,
                             truncation=truncation, max_length=max_length, stride=stride,
                             pad_to_multiple_of=pad_to_multiple_of, return_offsets_mapping=True,
                             return_overflowing_tokens=return_overflowing_tokens)
                return again._word_ids

        return BatchEncoding(data, word_ids=row_words, sequence_ids=row_seqs, tokens=tokens, word_ids_fn=word_ids_fn)

    def _truncate(
        self,
        a: _Seq,
        b: _Seq | None,
        mode: str | None,
        max_length: int | None,
        stride: int,
        overflow: bool,
        add_special: bool,
    ) -> list[tuple[_Seq, _Seq | None]]:
        """Truncate one example; with ``overflow``, every window (the first is the main one)."""
        if mode is None or max_length is None:
            return [(a, b)]
        budget = max_length - (self.num_special_tokens_to_add(b is not None) if add_special else 0)
        n1, n2 = len(a.ids), len(b.ids) if b is not None else 0
        if n1 + n2 <= budget:
            return [(a, b)]
        if budget <= 0 and (b is None or mode == "longest_first"):
            raise ValueError(f"max_length={max_length} leaves no room for tokens after the special tokens")
        if b is None:
            if mode == "only_second":
                raise ValueError("truncation='only_second' needs a text pair")
            return [(w, None) for w in _windows(a, budget, stride, overflow)]
        if mode == "only_first":
            room = budget - n2
            if room <= 0:
                raise ValueError(
                    f"cannot truncate the first sequence to fit max_length={max_length}: the second sequence "
                    f"alone has {n2} tokens; use truncation='longest_first' or 'only_second'"
                )
            return [(w, b) for w in _windows(a, room, stride, overflow)]
        if mode == "only_second":
            room = budget - n1
            if room <= 0:
                raise ValueError(
                    f"cannot truncate the second sequence to fit max_length={max_length}: the first sequence "
                    f"alone has {n1} tokens; use truncation='longest_first' or 'only_first'"
                )
            return [(a, w) for w in _windows(b, room, stride, overflow)]
        # longest_first, as Google's _truncate_seq_pair (run_classifier.py, run_squad_v1.py) and the
        # transformers 4 slow tokenizer: pop one token at a time from the longer sequence, from the
        # second on a tie. Once the two meet, they alternate (second, first, ...), so the first keeps
        # the odd token. Closed form of that loop:
        if overflow:
            raise ValueError(
                "return_overflowing_tokens with a text pair needs truncation='only_first' or 'only_second' "
                "(which sequence to cut into windows is otherwise ambiguous)"
            )
        remove = n1 + n2 - budget
        if n1 - n2 >= remove:  # only the first is cut (it stays at least as long as the second)
            s1, s2 = n1 - remove, n2
        elif n2 - n1 > remove:  # only the second is cut (it stays longer than the first)
            s1, s2 = n1, n2 - remove
        else:  # they meet, then alternate
            s1, s2 = (budget + 1) // 2, budget // 2
        return [(_slice(a, 0, s1), _slice(b, 0, s2))]

    def _assemble(self, a: _Seq, b: _Seq | None, add_special: bool) -> tuple[dict[str, list], list, list]:
        ids: list[int] = []
        types: list[int] = []
        special: list[int] = []
        offsets: list[tuple[int, int]] = []
        words: list[int | None] = []
        seqs: list[int | None] = []

        def add_special_token(tid: int, type_id: int) -> None:
            ids.append(tid)
            types.append(type_id)
            special.append(1)
            offsets.append((0, 0))
            words.append(None)
            seqs.append(None)

        def add_seq(s: _Seq, type_id: int) -> None:
            ids.extend(s.ids)
            types.extend([type_id] * len(s.ids))
            special.extend([0] * len(s.ids))
            offsets.extend(s.offsets or [(0, 0)] * len(s.ids))
            words.extend(s.words or [None] * len(s.ids))
            seqs.extend([type_id] * len(s.ids))

        if add_special:
            add_special_token(self.cls_token_id, 0)
        add_seq(a, 0)
        if add_special:
            add_special_token(self.sep_token_id, 0)
        if b is not None:
            add_seq(b, 1)
            if add_special:
                add_special_token(self.sep_token_id, 1)
        row = {
            "input_ids": ids,
            "token_type_ids": types,
            "attention_mask": [1] * len(ids),
            "special_tokens_mask": special,
            "offset_mapping": offsets,
        }
        return row, words, seqs


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _slice(s: _Seq, start: int, stop: int) -> _Seq:
    return _Seq(
        s.ids[start:stop],
        s.offsets[start:stop] if s.offsets is not None else None,
        s.words[start:stop] if s.words is not None else None,
        s.specials[start:stop],
    )


def _windows(s: _Seq, room: int, stride: int, overflow: bool) -> list[_Seq]:
    """Right-truncation to ``room`` tokens; with ``overflow`` also the later windows, each
    starting ``stride`` tokens before the previous one ended (as the `tokenizers` library does)."""
    if not overflow:
        return [_slice(s, 0, room)]
    if stride >= room:
        raise ValueError(
            f"stride ({stride}) must be smaller than the number of tokens a window can hold ({room}); "
            "lower stride or raise max_length"
        )
    out = []
    step = room - stride
    n = len(s.ids)
    for start in range(0, max(n, 1), step):
        stop = min(start + room, n)
        out.append(_slice(s, start, stop))
        if stop == n:
            break
    return out


def _check_text(value: Any, what: str) -> None:
    if not isinstance(value, str):
        if value is None:
            raise TypeError(f"{what} is None; expected a str (or a list of str for a batch)")
        raise TypeError(f"{what} must be a str (or a list of str for a batch), got {type(value).__name__}")


def _normalize_inputs(text: Any, text_pair: Any) -> tuple[list[str], list[str] | None, bool]:
    """-> (first texts, second texts or None, batched)."""
    if isinstance(text, str):
        if text_pair is not None:
            _check_text(text_pair, "text_pair")
            return [text], [text_pair], False
        return [text], None, False
    if text is None:
        raise TypeError("text is None; expected a str, a list of str, or a list of (text, text_pair)")
    if not isinstance(text, (list, tuple)):
        raise TypeError(f"text must be a str or a list of str, got {type(text).__name__}")
    texts = list(text)
    if text_pair is None and texts and all(isinstance(t, (list, tuple)) for t in texts):
        firsts, seconds = [], []
        for n, t in enumerate(texts):
            if len(t) != 2:
                raise ValueError(f"text[{n}] has {len(t)} items; a pair must be (text, text_pair)")
            _check_text(t[0], f"text[{n}][0]")
            _check_text(t[1], f"text[{n}][1]")
            firsts.append(t[0])
            seconds.append(t[1])
        return firsts, seconds, True
    for n, t in enumerate(texts):
        _check_text(t, f"text[{n}]")
    if text_pair is None:
        return texts, None, True
    if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)):
        raise TypeError("with a batch of texts, text_pair must be a list of str of the same length")
    pairs = list(text_pair)
    if len(pairs) != len(texts):
        raise ValueError(f"text has {len(texts)} items but text_pair has {len(pairs)}")
    for n, t in enumerate(pairs):
        _check_text(t, f"text_pair[{n}]")
    return texts, pairs, True


def _padding_mode(padding: Any) -> str | None:
    if padding is False or padding is None or padding == "do_not_pad":
        return None
    if padding is True or padding == "longest":
        return "longest"
    if padding == "max_length":
        return "max_length"
    raise ValueError(f"padding must be False, True, 'longest' or 'max_length', got {padding!r}")


def _truncation_mode(truncation: Any) -> str | None:
    if truncation is False or truncation is None or truncation == "do_not_truncate":
        return None
    if truncation is True:
        return "longest_first"
    if truncation in ("longest_first", "only_first", "only_second"):
        return truncation
    raise ValueError(f"truncation must be a bool, 'longest_first', 'only_first' or 'only_second', got {truncation!r}")


# return_tensors -> (module, install hint). "tf" and "jax" give int32, the dtype transformers' TF and Flax
# tokenizers returned and the Keras models' SavedModel signature takes; "pt" and "np" give int64.
TENSOR_TYPES = {
    "pt": ("torch", "pip install torch"),
    "np": ("numpy", "pip install numpy"),
    "tf": ("tensorflow", "pip install 'albertkit[tf]'"),
    "jax": ("jax", "pip install jax"),
}


def _to_tensor(value: list, kind: str) -> Any:
    if kind == "np":
        return np.asarray(value, dtype=np.int64)
    module, hint = TENSOR_TYPES[kind]
    try:
        lib = __import__(module)
    except ImportError:
        raise ImportError(f"return_tensors={kind!r} needs {module}: {hint}") from None
    if kind == "tf":
        return lib.constant(np.asarray(value, dtype=np.int32))
    if kind == "jax":
        import jax.numpy as jnp

        return jnp.asarray(np.asarray(value, dtype=np.int32))
    return lib.tensor(value, dtype=lib.long)


def _as_id_list(ids: Any) -> list:
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, (int, np.integer)):
        return [int(ids)]
    if not isinstance(ids, (list, tuple)):
        raise TypeError(f"expected a list of token ids, got {type(ids).__name__}")
    return [(_as_id_list(x) if isinstance(x, (list, tuple)) or hasattr(x, "tolist") and not isinstance(x, np.integer) else int(x)) for x in ids]


def _from_tokenizer_json(path: Path) -> tuple[bytes, dict[str, Any]]:
    """The SentencePiece model rebuilt from a tokenizer.json, and the options its normaliser implies."""
    from albertkit.formats.tokenizer_json import (
        TokenizerJsonError,
        spm_model_from_tokenizer_json,
        tokenizer_options_from_tokenizer_json,
    )

    try:
        return spm_model_from_tokenizer_json(path), tokenizer_options_from_tokenizer_json(path)
    except TokenizerJsonError as exc:
        raise TokenizerError(str(exc)) from None


def _optional_file(folder: Path | None, name_or_path: Any, filename: str) -> Path | None:
    if folder is not None and (folder / filename).is_file():
        return folder / filename
    if Path(name_or_path).is_dir():
        return None
    try:
        from albertkit.hub import resolve_file

        return resolve_file(name_or_path, filename)
    except Exception:  # optional file: absence is fine
        return None


def _config_options(data: dict[str, Any], where: Path) -> dict[str, Any]:
    """The tokenizer_config.json / special_tokens_map.json keys this tokenizer understands."""
    out: dict[str, Any] = {}
    for key in ("do_lower_case", "remove_space", "keep_accents"):
        if key in data:
            if not isinstance(data[key], bool):
                raise TokenizerError(f"{where}: {key} must be true or false, got {data[key]!r}")
            out[key] = data[key]
    if "model_max_length" in data:
        value = data["model_max_length"]
        if isinstance(value, (int, float)) and 0 < value < 10**9:
            out["model_max_length"] = int(value)
    for key in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        if key in data:
            value = data[key]
            if isinstance(value, dict):
                value = value.get("content")
            if not isinstance(value, str) or not value:
                raise TokenizerError(f"{where}: {key} must be a token string, got {data[key]!r}")
            out[key] = value
    return out


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------


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

    # Normalise with the same code the tokenizer uses (a throwaway instance would need a model).
    probe = AlbertTokenizer.__new__(AlbertTokenizer)
    probe.do_lower_case, probe.remove_space, probe.keep_accents = do_lower_case, True, keep_accents
    total = sum(p.stat().st_size for p in paths)
    model = io.BytesIO()
    with tqdm(total=total, unit="B", unit_scale=True, desc="reading corpus", disable=not progress) as bar:
        failure: list[Exception] = []

        def lines() -> Iterable[str]:
            # SentencePiece would wrap an exception raised inside its iterator into an opaque
            # RuntimeError; stop the iteration instead and re-raise the original afterwards.
            try:
                yield from _iter_training_lines(paths, probe._normalize, max_sentences, bar, fallback_encoding)
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
