"""Text -> SentencePiece ids, with or without offsets: steps 1, 3 and 4 of ALBERT's pipeline.

1. special-token strings (``[CLS] [SEP] [MASK] <pad> <unk>``) are cut out of the raw text first
   (longest first, case-sensitive); ``[MASK]`` absorbs the whitespace before it;
2. each remaining chunk is normalised (:class:`~albertkit.tokenization.normalizer.Normalizer`);
3. SentencePiece encodes the chunk (its own nmt_nfkc normaliser runs inside, in C++);
4. the digit-comma rule: a piece longer than one character that ends in a digit and ``,`` is
   re-encoded without the comma and the comma becomes its own piece (:meth:`split_digit_comma`).

Two ways through, the same ids (tests/test_tokenization_encoder.py holds them equal):

* :meth:`SentencePieceEncoder.encode_ids` / :meth:`encode_words`: many texts at once through
  SentencePiece's multi-threaded C++ batch encoder, the path for corpora;
* :meth:`SentencePieceEncoder.encode_aligned`: one text, also the character offsets of each token in
  the original text, from SentencePiece's byte spans mapped back through the normaliser.

A *word* (``words``) is what transformers' fast tokenizer calls one: a run of pieces from one that
starts with "▁" up to the next such piece; each chunk starts a word, and a special token found in the
text is a word of its own.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any, NamedTuple, Sequence

from albertkit.tokenization.normalizer import Normalizer

__all__ = ["Encoded", "SentencePieceEncoder", "TokenizerError", "is_digit_comma", "SPIECE_UNDERLINE"]

SPIECE_UNDERLINE = "\u2581"


class TokenizerError(ValueError):
    """A tokenizer file or an input the tokenizer cannot use; the message names which."""


def is_digit_comma(piece: str) -> bool:
    """Whether the digit-comma rule splits ``piece`` (``"▁2010,"`` -> ``"▁2010"``, ``","``)."""
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()


class Encoded(NamedTuple):
    """One text's tokens (no special tokens added): ids, word index per token, and when asked,
    ``(start, end)`` character offsets into the text and the pieces as shown (an unknown
    character as itself)."""

    ids: list[int]
    words: list[int | None]
    offsets: list[tuple[int, int]] | None = None
    pieces: list[str] | None = None


class SentencePieceEncoder:
    """ALBERT's text -> ids over a loaded ``sentencepiece.SentencePieceProcessor``.

        >>> enc = SentencePieceEncoder(sp, Normalizer(), special_tokens=["[CLS]", "[SEP]", "[MASK]"],
        ...                            lstrip_tokens={"[MASK]"})  # doctest: +SKIP
        >>> enc.encode_ids(["I was born in 92000, and"])  # doctest: +SKIP
        [[31, 23, 386, 19, 561, 3311, 15, 17]]
    """

    def __init__(
        self,
        sp: Any,
        normalize: Normalizer,
        special_tokens: Sequence[str],
        lstrip_tokens: frozenset[str] | set[str] = frozenset(),
        unk_token: str = "<unk>",
        num_threads: int = 1,
    ) -> None:
        self.sp = sp
        self.normalize = normalize
        self.num_threads = num_threads
        self.pieces = [sp.IdToPiece(i) for i in range(sp.GetPieceSize())]
        self.vocab = {p: i for i, p in enumerate(self.pieces)}
        self.unk_id = self.vocab.get(unk_token, max(sp.unk_id(), 0))
        # cut out of the raw text first, longest first; the caller checked they are in the vocabulary
        alts = sorted(set(special_tokens), key=len, reverse=True)
        self._special_re = re.compile("|".join(re.escape(t) for t in alts))
        self._special_first_chars = frozenset(t[0] for t in alts)
        # tokens that eat the whitespace on their left, as transformers' AddedToken(lstrip=True)
        self._lstrip_tokens = frozenset(lstrip_tokens)
        self._digit_comma_ids = frozenset(i for i, p in enumerate(self.pieces) if is_digit_comma(p))
        self._comma_id = self.vocab.get(",", self.unk_id)
        # 1 where a piece starts a word ("▁..."); summed along a chunk it numbers the words
        self._starts_word = [int(p.startswith(SPIECE_UNDERLINE)) for p in self.pieces]
        self._vanish_cache: dict[str, bool] = {" ": True}

    # -- step 1: special tokens ----------------------------------------------------------------

    def split_specials(self, text: str) -> list[tuple[str, int, int, bool]]:
        """Raw text -> ``[(chunk, start, end, is_special)]`` with special-token strings cut out.

        A token that absorbs the whitespace before it loses that whitespace from the chunk on its
        left and spans it itself (as transformers' fast tokenizer reports its offsets).
        """
        if not any(c in text for c in self._special_first_chars) or not self._special_re.search(text):
            return [(text, 0, len(text), False)]
        parts: list[tuple[str, int, int, bool]] = []
        pos = 0
        for m in self._special_re.finditer(text):
            left, start = text[pos : m.start()], m.start()
            if m.group() in self._lstrip_tokens:
                left = left.rstrip()
                start = pos + len(left)
            if left:
                parts.append((left, pos, pos + len(left), False))
            parts.append((m.group(), start, m.end(), True))
            pos = m.end()
        if pos < len(text):
            parts.append((text[pos:], pos, len(text), False))
        return parts

    # -- step 4: the digit-comma rule ----------------------------------------------------------

    def split_digit_comma(self, piece: str) -> list[int]:
        """The ids that replace a digit-comma piece: the piece re-encoded without its comma, then ``,``."""
        sub = self.sp.EncodeAsPieces(piece[:-1].replace(SPIECE_UNDERLINE, ""))
        if piece[0] != SPIECE_UNDERLINE and sub and sub[0][0] == SPIECE_UNDERLINE:
            # The original piece continued a word: drop the word-start marker the re-encoding added.
            sub = sub[1:] if len(sub[0]) == 1 else [sub[0][1:], *sub[1:]]
        return [self.vocab.get(p, self.unk_id) for p in sub] + [self._comma_id]

    # -- the bulk path -------------------------------------------------------------------------

    def _encode_chunks(self, chunks: list[str]) -> list[list[int]]:
        """Ids of normalised chunks (steps 3 and 4), through SentencePiece's batch encoder."""
        if not chunks:
            return []
        # A few chunks encode faster on the calling thread: SentencePiece starts its worker threads
        # per call, and right after a model forward they compete with PyTorch's spinning OpenMP threads.
        threads = self.num_threads if len(chunks) >= 32 else 1
        encoded = self.sp.encode(chunks, out_type=int, num_threads=threads)
        dc = self._digit_comma_ids
        for k, ids in enumerate(encoded):
            if not dc.isdisjoint(ids):
                fixed: list[int] = []
                for i in ids:
                    fixed.extend(self.split_digit_comma(self.pieces[i]) if i in dc else (i,))
                encoded[k] = fixed
        return encoded

    def _plan(self, texts: Sequence[str], caller: str) -> tuple[list[Any], list[list[int]]]:
        """Per text, the index of its one chunk, or its parts ``[(chunk index or -1, special id)]``;
        and the ids of every chunk."""
        if isinstance(texts, str):
            raise TypeError(f"{caller} expects a list of str, got a single str (use encode())")
        chunks: list[str] = []
        plan: list[Any] = []
        for n, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"{caller}: texts[{n}] is {type(text).__name__}, expected str")
            parts = self.split_specials(text)
            if len(parts) == 1 and not parts[0][3]:
                plan.append(len(chunks))
                chunks.append(self.normalize(text))
                continue
            items: list[tuple[int, int]] = []
            for chunk, _, _, special in parts:
                if special:
                    items.append((-1, self.vocab[chunk]))
                else:
                    items.append((len(chunks), 0))
                    chunks.append(self.normalize(chunk))
            plan.append(items)
        return plan, self._encode_chunks(chunks)

    def encode_ids(self, texts: Sequence[str], caller: str = "encode_batch") -> list[list[int]]:
        """Ids of many texts (the fastest path: no alignment at all)."""
        plan, encoded = self._plan(texts, caller)
        out: list[list[int]] = []
        for entry in plan:
            if isinstance(entry, int):
                out.append(encoded[entry])
                continue
            ids: list[int] = []
            for k, special_id in entry:
                if k < 0:
                    ids.append(special_id)
                else:
                    ids.extend(encoded[k])
            out.append(ids)
        return out

    def encode_words(self, texts: Sequence[str], caller: str = "tokenizer") -> list[Encoded]:
        """Ids and word indices of many texts, in the same pass as the bulk ids."""
        plan, encoded = self._plan(texts, caller)
        out: list[Encoded] = []
        for entry in plan:
            if isinstance(entry, int):
                ids = encoded[entry]
                out.append(Encoded(ids, self._chunk_words(ids, -1)))
                continue
            ids, words, last = [], [], -1
            for k, special_id in entry:
                if k < 0:
                    last += 1
                    ids.append(special_id)
                    words.append(last)
                elif encoded[k]:
                    ids.extend(encoded[k])
                    words.extend(self._chunk_words(encoded[k], last))
                    last = words[-1]
            out.append(Encoded(ids, words))
        return out

    def _chunk_words(self, ids: list[int], last: int) -> list[int | None]:
        """Word index per id of one chunk, numbering on from ``last``; the chunk's first piece starts a word."""
        if not ids:
            return []
        starts = self._starts_word
        first = last + 1 - starts[ids[0]]
        words: list[int | None] = list(accumulate(map(starts.__getitem__, ids), initial=first))
        del words[0]
        return words

    # -- the aligned path ----------------------------------------------------------------------

    def encode_aligned(self, text: str) -> Encoded:
        """Ids of one text with character offsets into ``text``, word indices and pieces."""
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        words: list[int | None] = []
        pieces: list[str] = []
        last = -1
        for chunk, start, end, special in self.split_specials(text):
            if special:
                last += 1
                ids.append(self.vocab[chunk])
                offsets.append((start, end))
                words.append(last)
                pieces.append(chunk)
                continue
            c_ids, c_offsets, c_pieces = self._encode_chunk_aligned(chunk, start)
            if c_ids:
                ids.extend(c_ids)
                offsets.extend(c_offsets)
                pieces.extend(c_pieces)
                words.extend(self._chunk_words(c_ids, last))
                last = words[-1]
        return Encoded(ids, words, offsets, pieces)

    def _encode_chunk_aligned(self, chunk: str, base: int) -> tuple[list[int], list[tuple[int, int]], list[str]]:
        """Ids, original-text offsets and pieces of one chunk without special tokens."""
        norm, starts, ends = self.normalize.align(chunk, base)
        if not norm:
            return [], [], []
        proto = self.sp.encode(norm, return_type="proto")
        n = len(norm)
        # SentencePiece's spans are in UTF-8 bytes; map them to characters of norm
        if norm.isascii():
            to_char: Sequence[int] = range(n + 1)
        else:
            to_char = []
            for ci, ch in enumerate(norm):
                to_char.extend([ci] * len(ch.encode("utf-8")))
            to_char.append(n)
        # per character: SentencePiece's normaliser turns it into nothing or a space
        cache = self._vanish_cache
        for ch in set(norm).difference(cache):
            cache[ch] = ch.isspace() or not self.sp.encode(ch)
        vanishes = [cache[ch] for ch in norm]
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        pieces: list[str] = []

        for p in proto.pieces:
            cb, ce = to_char[p.begin], to_char[p.end]
            # the span without the whitespace SentencePiece folded into "▁" and without characters its
            # normaliser deletes (controls, zero-width marks), which it attributes to a neighbouring piece
            while cb < ce and vanishes[cb]:
                cb += 1
            while ce > cb and vanishes[ce - 1]:
                ce -= 1
            if cb >= ce:
                # a lone "▁": transformers' fast tokenizer maps it to the first character after it
                cb = to_char[p.end]
                while cb < n and vanishes[cb]:
                    cb += 1
                cb = min(cb, n - 1)
                ce = cb + 1
            if p.id not in self._digit_comma_ids:
                ids.append(p.id)
                offsets.append((starts[cb], ends[ce - 1]))
                pieces.append(p.piece)  # an unknown character shows as itself
                continue
            # digit-comma rule: spread the sub-pieces over the span by their lengths
            cur = cb
            for sub in self.split_digit_comma(p.piece):
                length = max(len(self.pieces[sub].lstrip(SPIECE_UNDERLINE)), 1)
                stop = min(cur + length, ce)
                if stop <= cur:  # defensive: never an empty or inverted span
                    cur, stop = max(ce - 1, cb), ce
                ids.append(sub)
                offsets.append((starts[cur], ends[stop - 1]))
                pieces.append(self.pieces[sub])
                cur = stop
        return ids, offsets, pieces
