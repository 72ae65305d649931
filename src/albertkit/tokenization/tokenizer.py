"""``AlbertTokenizer``: ALBERT's SentencePiece tokenizer with the Hugging Face tokenizer interface.

Ids are identical to Hugging Face transformers' slow (SentencePiece) ``AlbertTokenizer`` of the
4.x series, which defines what ALBERT checkpoints were trained on; character offsets into the
original text are identical to the fast (``tokenizers``) one wherever both produce the same pieces.

    >>> tok = AlbertTokenizer.from_pretrained("albert-base-v2")  # doctest: +SKIP
    >>> tok("Hello, my dog is cute")["input_ids"]  # doctest: +SKIP
    [2, 10975, 15, 51, 1952, 25, 10901, 3]

The class holds the files and the vocabulary and answers the Hugging Face calls; the text -> ids
pipeline is :class:`~albertkit.tokenization.encoder.SentencePieceEncoder` (see its module for the
four steps, ALBERT_REFERENCE.md section 2), the model-input layer is
:mod:`albertkit.tokenization.encoding`.

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
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from albertkit.tokenization import encoding as E
from albertkit.tokenization.encoder import SPIECE_UNDERLINE, SentencePieceEncoder, TokenizerError
from albertkit.tokenization.normalizer import Normalizer

__all__ = ["AlbertTokenizer", "VOCAB_FILE", "TOKENIZER_CONFIG_FILE", "TOKENIZER_FILE", "SPECIAL_TOKENS_MAP_FILE"]

logger = logging.getLogger(__name__)

VOCAB_FILE = "spiece.model"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
TOKENIZER_FILE = "tokenizer.json"  # the `tokenizers` file; all that transformers 5 saves
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
_SPECIAL_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def _token_id(name: str) -> property:
    """A read-only ``<name>_id`` property: the id of the token held in attribute ``name``."""
    return property(lambda self: self._vocab[getattr(self, name)], doc=f"The id of ``{name}``.")


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
        num_threads: threads for SentencePiece's batch encoder (default: all cores).
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
        path = Path(vocab_file)
        self.sp = _load_sentencepiece(path, model_proto)
        self.vocab_file = str(path)
        self.normalizer = Normalizer(bool(do_lower_case), bool(remove_space), bool(keep_accents))
        self.model_max_length = int(model_max_length)
        for key in kwargs:
            logger.debug("AlbertTokenizer: ignoring option %r", key)
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        self.bos_token, self.eos_token = cls_token, sep_token  # transformers' aliases
        self.all_special_tokens = [cls_token, sep_token, unk_token, pad_token, mask_token]
        self.encoder = SentencePieceEncoder(
            self.sp, self.normalizer, self.all_special_tokens, lstrip_tokens={mask_token}, unk_token=unk_token,
            # threads for SentencePiece's batch encoder; all cores unless told otherwise
            num_threads=int(num_threads) if num_threads else (os.cpu_count() or 1),
        )
        self._pieces, self._vocab = self.encoder.pieces, self.encoder.vocab
        for name in _SPECIAL_NAMES:
            if getattr(self, name) not in self._vocab:
                raise TokenizerError(f"{path}: the vocabulary has no {name} {getattr(self, name)!r}")
        self.all_special_ids = [self._vocab[t] for t in self.all_special_tokens]
        self._special_ids = frozenset(self.all_special_ids)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> "AlbertTokenizer":
        """Load from a folder (spiece.model + optional tokenizer_config.json / special_tokens_map.json),
        a hub name (through the Hugging Face cache), or a direct path to a ``.model`` file.
        A folder with ``tokenizer.json`` and no ``spiece.model`` (as transformers 5 saves it) loads
        through the SentencePiece model rebuilt from it (see albertkit.tokenization.tokenizer_json).

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
        from albertkit.tokenization.tokenizer_json import tokenizer_json_from_spm_model
        from albertkit.utils import atomic_write_bytes, atomic_write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / VOCAB_FILE, self.sp.serialized_model_proto())
        special = {
            **self.special_tokens_map,
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

    # -- options and vocabulary --------------------------------------------------------------

    # the normaliser's options, read-only: the normaliser is built once from them
    do_lower_case = property(lambda self: self.normalizer.do_lower_case)
    remove_space = property(lambda self: self.normalizer.remove_space)
    keep_accents = property(lambda self: self.normalizer.keep_accents)

    @property
    def num_threads(self) -> int:
        """Threads of SentencePiece's batch encoder (settable)."""
        return self.encoder.num_threads

    @num_threads.setter
    def num_threads(self, value: int) -> None:
        self.encoder.num_threads = int(value)

    def _normalize(self, text: str) -> str:
        """The text SentencePiece sees for ``text`` (one chunk without special tokens)."""
        return self.normalizer(text)

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    def __len__(self) -> int:
        return len(self._pieces)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    unk_token_id = _token_id("unk_token")
    sep_token_id = _token_id("sep_token")
    pad_token_id = _token_id("pad_token")
    cls_token_id = _token_id("cls_token")
    mask_token_id = _token_id("mask_token")
    bos_token_id = cls_token_id
    eos_token_id = sep_token_id

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {
            "bos_token": self.cls_token, "eos_token": self.sep_token, "unk_token": self.unk_token,
            "sep_token": self.sep_token, "pad_token": self.pad_token, "cls_token": self.cls_token,
            "mask_token": self.mask_token,
        }

    @cached_property
    def user_defined_ids(self) -> frozenset[int]:
        """Ids of the SentencePiece model's user-defined symbols (ALBERT: ``( ) " - . – £ €``).

            >>> sorted(AlbertTokenizer.from_pretrained("albert-base-v2").user_defined_ids)  # doctest: +SKIP
            [5, 6, 7, 8, 9, 10, 11, 12]
        """
        from albertkit.tokenization.tokenizer_json import sentencepiece_pb2

        pb = sentencepiece_pb2()
        proto = pb.ModelProto()
        proto.ParseFromString(self.sp.serialized_model_proto())
        kind = pb.ModelProto.SentencePiece.USER_DEFINED
        return frozenset(i for i, piece in enumerate(proto.pieces) if piece.type == kind)

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Piece(s) -> id(s); unknown pieces give the ``<unk>`` id."""
        if isinstance(tokens, str):
            return self._vocab.get(tokens, self.unk_token_id)
        unk = self.unk_token_id
        return [self._vocab.get(t, unk) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> str | list[str]:
        if isinstance(ids, (int, np.integer)):
            return self._piece(int(ids))
        ids = E.as_id_list(ids)
        return [self._piece(i) for i in ids if not (skip_special_tokens and i in self._special_ids)]

    def _piece(self, i: int) -> str:
        if not 0 <= i < len(self._pieces):
            raise IndexError(f"token id {i} is out of range for a vocabulary of {len(self._pieces)}")
        return self._pieces[i]

    def word_start_mask(self) -> np.ndarray:
        """Bool [vocab]: True where a piece starts a word (begins with "▁") or is a special/control token.

        Whole-word masking groups a word-start piece with the non-start pieces after it.
        """
        return np.fromiter((self.is_word_start(i) for i in range(len(self._pieces))), dtype=bool, count=len(self._pieces))

    def is_word_start(self, token_id: int) -> bool:
        piece = self._piece(int(token_id))
        return piece.startswith(SPIECE_UNDERLINE) or self.sp.IsControl(int(token_id)) or self.sp.IsUnknown(int(token_id))

    # -- encoding ----------------------------------------------------------------------------

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = False) -> list[list[int]]:
        """Ids for many texts at once, using SentencePiece's multi-threaded C++ batch encoder.

            >>> tok.encode_batch(["first line", "second line"])  # doctest: +SKIP
            [[64, 293], [153, 293]]

        Identical to ``[tok.encode(t, add_special_tokens=...) for t in texts]``; this is the path for
        pretraining corpora.
        """
        out = self.encoder.encode_ids(texts)
        if add_special_tokens:
            cls_id, sep_id = self.cls_token_id, self.sep_token_id
            out = [[cls_id, *ids, sep_id] for ids in out]
        return out

    def tokenize(self, text: str, **kwargs: Any) -> list[str]:
        """Text -> pieces (no special tokens added).

        An unknown character shows as itself (as transformers shows it); its id is ``<unk>``'s.
        """
        E.check_text(text, "text")
        return self.encoder.encode_aligned(text).pieces or []  # always a list on this path

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

    # -- decoding ----------------------------------------------------------------------------

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
        ids = E.as_id_list(token_ids)
        if ids and isinstance(ids[0], list):
            raise TypeError("decode expects one sequence of ids; use batch_decode for a batch")
        tokens = self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens)
        return self.convert_tokens_to_string(tokens)

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False, **kwargs: Any) -> list[str]:
        rows = E.as_id_list(sequences)
        return [self.decode(row, skip_special_tokens=skip_special_tokens) for row in rows]

    # -- __call__ ----------------------------------------------------------------------------

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
    ) -> E.BatchEncoding:
        """Encode a text, a pair, or a batch of either, into model inputs.

            >>> enc = tok(["what is albert?"], ["ALBERT is a lite BERT."], truncation="only_second",
            ...           max_length=32, padding="max_length", return_tensors="pt")  # doctest: +SKIP

        Returns a :class:`BatchEncoding`; unbatched input gives flat lists (unless overflowing
        windows are returned, which always makes a batch, as in transformers).
        """
        texts, pairs, batched = E.split_inputs(text, text_pair)
        pad_mode = E.padding_mode(padding)
        trunc_mode = E.truncation_mode(truncation)
        if trunc_mode is None and max_length is not None and pad_mode != "max_length":
            trunc_mode = "longest_first"  # transformers does this too (with a warning)
        if max_length is None and (trunc_mode is not None or pad_mode == "max_length"):
            max_length = self.model_max_length
        if max_length is not None and max_length < 0:
            raise ValueError(f"max_length must be >= 0, got {max_length}")
        if pad_to_multiple_of is not None and pad_to_multiple_of <= 0:
            raise ValueError(f"pad_to_multiple_of must be positive, got {pad_to_multiple_of}")
        if return_tensors not in (None, *E.TENSOR_TYPES):
            raise ValueError(f"return_tensors must be None, 'pt', 'np', 'tf' or 'jax', got {return_tensors!r}")
        if stride < 0:
            raise ValueError(f"stride must be >= 0, got {stride}")

        everything = texts + (pairs or [])
        if return_offsets_mapping:
            encoded = [self.encoder.encode_aligned(t) for t in everything]
        else:  # ids and word ids through the batch encoder
            encoded = self.encoder.encode_words(everything)
        wanted = (("token_type_ids", return_token_type_ids), ("attention_mask", return_attention_mask),
                  ("special_tokens_mask", return_special_tokens_mask), ("offset_mapping", return_offsets_mapping))
        keys = ["input_ids", *(k for k, on in wanted if on)]
        cls_id, sep_id = (self.cls_token_id, self.sep_token_id) if add_special_tokens else (None, None)
        rows: list[dict[str, list]] = []
        sample_map: list[int] = []
        for n, a in enumerate(encoded[: len(texts)]):
            b = encoded[len(texts) + n] if pairs is not None else None
            # trunc_mode implies a max_length (set above)
            budget = (max_length or 0) - (self.num_special_tokens_to_add(b is not None) if add_special_tokens else 0)
            for wa, wb in E.truncate(a, b, trunc_mode, budget, max_length or 0, stride, return_overflowing_tokens):
                rows.append(E.assemble(wa, wb, cls_id, sep_id, keys))
                sample_map.append(n)
        if pad_mode is not None:
            E.pad_rows(rows, {**E.ROW_PAD, "input_ids": self.pad_token_id},
                       max_length if pad_mode == "max_length" else None, pad_to_multiple_of)
        return E.build_batch(rows, keys, self._pieces, batched=batched, return_tensors=return_tensors,
                             sample_map=sample_map if return_overflowing_tokens else None, return_length=return_length)


# ----------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------


def _load_sentencepiece(path: Path, model_proto: bytes | None) -> Any:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor()
    if model_proto is not None:  # rebuilt from another file (tokenizer.json); path names that file
        try:
            sp.LoadFromSerializedProto(model_proto)
        except (OSError, RuntimeError) as exc:
            raise TokenizerError(f"{path}: the SentencePiece model rebuilt from it does not load ({exc})") from None
    elif not path.is_file():
        raise TokenizerError(f"{path}: SentencePiece model not found")
    else:
        try:
            sp.Load(str(path))
        except (OSError, RuntimeError) as exc:  # sentencepiece raises OSError on a bad proto
            raise TokenizerError(f"{path}: not a valid SentencePiece model ({exc})") from None
    if sp.GetPieceSize() == 0:
        raise TokenizerError(f"{path}: the SentencePiece model has no pieces")
    return sp


def _from_tokenizer_json(path: Path) -> tuple[bytes, dict[str, Any]]:
    """The SentencePiece model rebuilt from a tokenizer.json, and the options its normaliser implies."""
    from albertkit.tokenization.tokenizer_json import (
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
    for key in _SPECIAL_NAMES:
        if key in data:
            value = data[key]
            if isinstance(value, dict):
                value = value.get("content")
            if not isinstance(value, str) or not value:
                raise TokenizerError(f"{where}: {key} must be a token string, got {data[key]!r}")
            out[key] = value
    return out
