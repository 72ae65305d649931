"""ALBERT's text normalisation (step 2 of the pipeline), written once.

The slow tokenizer of transformers 4 (and Google's ``tokenization.preprocess_text``) prepares each
chunk of text before SentencePiece sees it: strip and collapse whitespace, ``````/``''`` -> ``"``,
NFKD with the combining marks dropped (unless ``keep_accents``), lowercase (unless cased).
:class:`Normalizer` does exactly that; :meth:`Normalizer.align` runs the same function word by word
(and character by character for the alignment), so the text it returns is the one ``__call__``
returns and each normalised character knows where in the original text it came from.

    >>> norm = Normalizer(do_lower_case=True, remove_space=True, keep_accents=False)
    >>> norm("  Falsé  ``quote''")
    'false "quote"'
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass

__all__ = ["Normalizer"]


def _build_combining_table() -> dict[int, None]:
    # str.translate table that deletes every code point with a non-zero canonical combining class:
    # the same set as `unicodedata.combining(c) != 0` used by the reference, but applied in C.
    return {cp: None for cp in range(sys.maxunicode + 1) if unicodedata.combining(chr(cp))}


_COMBINING = _build_combining_table()
# Python's str.split() and re's \s agree on what whitespace is (Py_UNICODE_ISSPACE).
_WORD_RE = re.compile(r"\S+")
_QUOTES = ("``", "''")


@dataclass(frozen=True)
class Normalizer:
    """The text transformation before SentencePiece (its own nmt_nfkc normaliser then runs in C++).

    Args:
        do_lower_case: lowercase (ALBERT's English models do).
        remove_space: strip the text and collapse runs of whitespace to one space.
        keep_accents: keep accents; otherwise NFKD and drop combining marks.
    """

    do_lower_case: bool = True
    remove_space: bool = True
    keep_accents: bool = False

    def __call__(self, text: str) -> str:
        """Normalise one chunk of text that holds no special tokens."""
        if self.do_lower_case:
            # transformers 4.x lowercases the raw text before its own normalisation, one character
            # at a time (so a word-final capital sigma becomes "σ", not "ς"); keep both.
            text = (text.replace("\u03a3", "\u03c3") if "\u03a3" in text else text).lower()
        if self.remove_space:
            text = " ".join(text.split())
        if "``" in text or "''" in text:
            text = text.replace("``", '"').replace("''", '"')
        if not self.keep_accents and not text.isascii():
            text = unicodedata.normalize("NFKD", text).translate(_COMBINING)
        if self.do_lower_case:
            text = text.lower()
        return text

    def align(self, chunk: str, base: int = 0) -> tuple[str, list[int], list[int]]:
        """``(self(chunk), starts, ends)``: normalised character ``i`` came from
        ``original[starts[i]:ends[i]]``, where ``chunk`` starts at ``base`` in the original text.

            >>> Normalizer().align("Ab  ``c''")
            ('ab "c"', [0, 1, 2, 5, 6, 8], [1, 2, 4, 6, 7, 9])
        """
        if self.remove_space:
            words = [(m.start(), m.group()) for m in _WORD_RE.finditer(chunk)]
        else:
            words = [(0, chunk)] if chunk else []
        parts: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        prev_end = -1
        for pos, word in words:
            if prev_end >= 0:  # the single space that replaces the run of whitespace before this word
                parts.append(" ")
                starts.append(base + prev_end)
                ends.append(base + pos)
            prev_end = pos + len(word)
            s = base + pos
            if word.isascii() and "``" not in word and "''" not in word:  # one character each
                parts.append(word.lower() if self.do_lower_case else word)
                starts.extend(range(s, s + len(word)))
                ends.extend(range(s + 1, s + len(word) + 1))
                continue
            # Each original character (or quote pair) alone decides how many characters it becomes;
            # the whole word decides which characters (context rules such as the final sigma).
            outs: list[str] = []
            i = 0
            while i < len(word):
                if word[i : i + 2] in _QUOTES:
                    # one '"' for two characters; transformers' fast tokenizer aligns it with the second
                    outs.append('"')
                    starts.append(s + i + 1)
                    ends.append(s + i + 2)
                    i += 2
                    continue
                out = self(word[i])
                outs.append(out)
                starts.extend([s + i] * len(out))
                ends.extend([s + i + 1] * len(out))
                i += 1
            whole = self(word)
            parts.append(whole if len(whole) == sum(map(len, outs)) else "".join(outs))
        return "".join(parts), starts, ends
