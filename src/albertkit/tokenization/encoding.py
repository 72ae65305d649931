"""From encoded texts to model inputs: pairs, truncation (with overflow windows), special tokens,
padding, tensors, and the :class:`BatchEncoding` that carries word and sequence ids per row.

    >>> enc = tok(["a question", "another"], padding=True, return_tensors="pt")  # doctest: +SKIP
    >>> enc["input_ids"].shape, enc.word_ids(0), enc.sequence_ids(0)  # doctest: +SKIP

Truncation of pairs with ``longest_first`` cuts as Google's ``_truncate_seq_pair`` and the 4.x slow
tokenizer do (see :func:`truncate`); padding is :func:`pad_rows`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from albertkit.tokenization.encoder import Encoded
from albertkit.utils import pad_lists

__all__ = ["BatchEncoding", "TENSOR_TYPES", "build_batch", "pad_rows", "truncate"]

# return_tensors -> (module, install hint). "tf" and "jax" give int32, the dtype transformers' TF and Flax
# tokenizers returned and the Keras models' SavedModel signature takes; "pt" and "np" give int64.
TENSOR_TYPES = {
    "pt": ("torch", "pip install torch"),
    "np": ("numpy", "pip install numpy"),
    "tf": ("tensorflow", "pip install 'albertkit[tf]'"),
    "jax": ("jax", "pip install jax"),
}


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
        word_ids_fn: Callable[[], list[list[int | None]]] | None = None,
    ) -> None:
        super().__init__(data or {})
        self._word_ids = word_ids
        self._word_ids_fn = word_ids_fn  # computes word ids on first use, for a caller that defers them
        self._sequence_ids = sequence_ids
        self._tokens = tokens

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getstate__(self) -> dict[str, Any]:
        return {"data": dict(self), "w": self._all_word_ids(), "s": self._sequence_ids, "t": self._tokens}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.update(state["data"])
        self._word_ids, self._sequence_ids, self._tokens = state["w"], state["s"], state["t"]
        self._word_ids_fn = None

    def _all_word_ids(self) -> list[list[int | None]] | None:
        if self._word_ids is None and self._word_ids_fn is not None:
            self._word_ids, self._word_ids_fn = self._word_ids_fn(), None
        return self._word_ids

    def _row(self, table: list | None, batch_index: int, what: str) -> list:
        if table is None:
            raise ValueError(f"{what} is not available for this BatchEncoding (it was not made by AlbertTokenizer.__call__)")
        if not -len(table) <= batch_index < len(table):
            raise IndexError(f"batch_index {batch_index} out of range for a batch of {len(table)}")
        return table[batch_index]

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """Index of the whitespace-separated word (within its sequence) of each token; None for special tokens."""
        return list(self._row(self._all_word_ids(), batch_index, "word_ids"))

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
# Arguments
# ----------------------------------------------------------------------------------------------


def check_text(value: Any, what: str) -> None:
    if not isinstance(value, str):
        if value is None:
            raise TypeError(f"{what} is None; expected a str (or a list of str for a batch)")
        raise TypeError(f"{what} must be a str (or a list of str for a batch), got {type(value).__name__}")


def split_inputs(text: Any, text_pair: Any) -> tuple[list[str], list[str] | None, bool]:
    """``tokenizer(text, text_pair)``'s inputs -> (first texts, second texts or None, batched)."""
    if isinstance(text, str):
        if text_pair is not None:
            check_text(text_pair, "text_pair")
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
            check_text(t[0], f"text[{n}][0]")
            check_text(t[1], f"text[{n}][1]")
            firsts.append(t[0])
            seconds.append(t[1])
        return firsts, seconds, True
    for n, t in enumerate(texts):
        check_text(t, f"text[{n}]")
    if text_pair is None:
        return texts, None, True
    if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)):
        raise TypeError("with a batch of texts, text_pair must be a list of str of the same length")
    pairs = list(text_pair)
    if len(pairs) != len(texts):
        raise ValueError(f"text has {len(texts)} items but text_pair has {len(pairs)}")
    for n, t in enumerate(pairs):
        check_text(t, f"text_pair[{n}]")
    return texts, pairs, True


def padding_mode(padding: Any) -> str | None:
    if padding is False or padding is None or padding == "do_not_pad":
        return None
    if padding is True or padding == "longest":
        return "longest"
    if padding == "max_length":
        return "max_length"
    raise ValueError(f"padding must be False, True, 'longest' or 'max_length', got {padding!r}")


def truncation_mode(truncation: Any) -> str | None:
    if truncation is False or truncation is None or truncation == "do_not_truncate":
        return None
    if truncation is True:
        return "longest_first"
    if truncation in ("longest_first", "only_first", "only_second"):
        return truncation
    raise ValueError(f"truncation must be a bool, 'longest_first', 'only_first' or 'only_second', got {truncation!r}")


# ----------------------------------------------------------------------------------------------
# Truncation
# ----------------------------------------------------------------------------------------------


def _slice(s: Encoded, start: int, stop: int) -> Encoded:
    return Encoded(
        s.ids[start:stop],
        s.words[start:stop],
        s.offsets[start:stop] if s.offsets is not None else None,
    )


def _windows(s: Encoded, room: int, stride: int, overflow: bool) -> list[Encoded]:
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


def truncate(
    a: Encoded, b: Encoded | None, mode: str | None, budget: int, max_length: int, stride: int = 0, overflow: bool = False
) -> list[tuple[Encoded, Encoded | None]]:
    """Fit one example into ``budget`` tokens (``max_length`` less the special tokens); with
    ``overflow``, every window (the first is the main one)."""
    if mode is None:
        return [(a, b)]
    n1, n2 = len(a.ids), len(b.ids) if b is not None else 0
    if n1 + n2 <= budget:
        return [(a, b)]
    if budget <= 0 and (b is None or mode == "longest_first"):
        raise ValueError(f"max_length={max_length} leaves no room for tokens after the special tokens")
    if b is None:
        if mode == "only_second":
            raise ValueError("truncation='only_second' needs a text pair")
        return [(w, None) for w in _windows(a, budget, stride, overflow)]
    if mode in ("only_first", "only_second"):
        first = mode == "only_first"
        cut, kept = ("first", "second") if first else ("second", "first")
        room = budget - (n2 if first else n1)
        if room <= 0:
            raise ValueError(
                f"cannot truncate the {cut} sequence to fit max_length={max_length}: the {kept} sequence "
                f"alone has {n2 if first else n1} tokens; use truncation='longest_first' or 'only_{kept}'"
            )
        if first:
            return [(w, b) for w in _windows(a, room, stride, overflow)]
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


# ----------------------------------------------------------------------------------------------
# Rows, padding, the batch
# ----------------------------------------------------------------------------------------------

# Every column of a row, and what a padding position holds in it.
ROW_PAD = {
    "input_ids": None,  # the tokenizer's pad id
    "token_type_ids": 0,
    "attention_mask": 0,
    "special_tokens_mask": 1,
    "offset_mapping": (0, 0),
    "words": None,
    "sequence_ids": None,
}


def assemble(a: Encoded, b: Encoded | None, cls_id: int | None, sep_id: int | None, keys: Sequence[str] = tuple(ROW_PAD)) -> dict[str, list]:
    """``[CLS] A [SEP] (B [SEP])`` (no special tokens when ``cls_id`` is None): the columns in ``keys``
    plus ``words`` and ``sequence_ids``."""
    head, tail = ([cls_id], [sep_id]) if cls_id is not None and sep_id is not None else ([], [])
    h, t, n1 = len(head), len(tail), len(a.ids)
    n2 = len(b.ids) if b is not None else 0
    ids = head + a.ids + tail
    words = [None] * h + a.words + [None] * t
    seqs: list[int | None] = [None] * h + [0] * n1 + [None] * t
    if b is not None:
        ids += b.ids + tail
        words += b.words + [None] * t
        seqs += [1] * n2 + [None] * t
    row: dict[str, list] = {"input_ids": ids, "words": words, "sequence_ids": seqs}
    if "token_type_ids" in keys:
        row["token_type_ids"] = [0] * (h + n1 + t) + ([1] * (n2 + t) if b is not None else [])
    if "attention_mask" in keys:
        row["attention_mask"] = [1] * len(ids)
    if "special_tokens_mask" in keys:
        row["special_tokens_mask"] = [1] * h + [0] * n1 + [1] * t + ([0] * n2 + [1] * t if b is not None else [])
    if "offset_mapping" in keys:
        def offsets(s: Encoded) -> list[tuple[int, int]]:
            return s.offsets if s.offsets is not None else [(0, 0)] * len(s.ids)

        row["offset_mapping"] = [(0, 0)] * h + offsets(a) + [(0, 0)] * t
        if b is not None:
            row["offset_mapping"] += offsets(b) + [(0, 0)] * t
    return row


def pad_rows(rows: list[dict[str, list]], pad_values: dict[str, Any], length: int | None = None, multiple_of: int | None = None) -> int:
    """Right-pad every row (a dict of equal-length lists) in place to ``length`` (default: the longest
    row), rounded up to a multiple of ``multiple_of``; column ``k`` is padded with ``pad_values[k]``.
    Returns the padded length. The tokenizer's only padding.

        >>> rows = [{"input_ids": [2, 5, 3]}, {"input_ids": [2, 3]}]
        >>> pad_rows(rows, {"input_ids": 0}), rows[1]
        (3, {'input_ids': [2, 3, 0]})
    """
    target = max((len(next(iter(r.values()), [])) for r in rows), default=0) if length is None else length
    _, target = pad_lists([], None, target, multiple_of)
    for r in rows:
        for key, column in r.items():
            if len(column) < target:
                r[key] = pad_lists([column], pad_values[key], target)[0][0]
    return target


def to_tensor(value: list, kind: str) -> Any:
    """A padded list of rows -> the ``return_tensors`` kind's array."""
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


def build_batch(
    rows: list[dict[str, list]],
    keys: Sequence[str],
    pieces: list[str],
    *,
    batched: bool,
    return_tensors: str | None,
    sample_map: list[int] | None = None,
    return_length: bool = False,
) -> BatchEncoding:
    """The :class:`BatchEncoding` of assembled (and padded) rows, with the columns in ``keys``.

    A single text gives flat lists, as in transformers; tensors and overflow windows keep the batch axis.
    """
    data: dict[str, Any] = {k: [r[k] for r in rows] for k in keys}
    if return_length:
        data["length"] = [len(r["input_ids"]) for r in rows]
    if sample_map is not None:
        data["overflow_to_sample_mapping"] = sample_map
    if return_tensors is not None:
        lengths = {len(r["input_ids"]) for r in rows}
        if len(lengths) > 1:
            raise ValueError(
                "cannot make a tensor of sequences of different lengths "
                f"({min(lengths)}..{max(lengths)}); pass padding=True or padding='max_length'"
            )
        data = {k: to_tensor(v, return_tensors) for k, v in data.items()}
    if not batched and sample_map is None and return_tensors is None:
        data = {k: v[0] for k, v in data.items()}
    tokens = [[pieces[i] for i in r["input_ids"]] for r in rows]
    return BatchEncoding(
        data, word_ids=[r["words"] for r in rows], sequence_ids=[r["sequence_ids"] for r in rows], tokens=tokens
    )


def as_id_list(ids: Any) -> list:
    """Ids (or rows of ids) as given to decode: a list, tuple, array, tensor or one int -> nested lists of int."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, (int, np.integer)):
        return [int(ids)]
    if not isinstance(ids, (list, tuple)):
        raise TypeError(f"expected a list of token ids, got {type(ids).__name__}")
    return [(as_id_list(x) if isinstance(x, (list, tuple)) or hasattr(x, "tolist") and not isinstance(x, np.integer) else int(x)) for x in ids]
