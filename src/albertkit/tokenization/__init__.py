"""ALBERT's SentencePiece tokenizer, in layers that each do one thing:

* :mod:`~albertkit.tokenization.normalizer` - :class:`Normalizer`: the text transformation before
  SentencePiece (whitespace, quotes, accents, case), with its character alignment;
* :mod:`~albertkit.tokenization.encoder` - :class:`SentencePieceEncoder`: special tokens cut out,
  SentencePiece, the digit-comma rule; ids in bulk (the fast path) or one text with offsets;
* :mod:`~albertkit.tokenization.encoding` - pairs, truncation and overflow windows, special tokens,
  padding (:func:`pad_rows`), tensors, :class:`BatchEncoding`;
* :mod:`~albertkit.tokenization.tokenizer` - :class:`AlbertTokenizer`: files, vocabulary, and the
  Hugging Face calls over the layers above;
* :mod:`~albertkit.tokenization.tokenizer_json` - ``tokenizer.json`` <-> ``spiece.model``;
* :mod:`~albertkit.tokenization.train` - :func:`train_tokenizer`;
* :mod:`~albertkit.tokenization.commands` - ``albertkit train-tokenizer`` and ``albertkit tokenize``.

    >>> from albertkit.tokenization import AlbertTokenizer
    >>> tok = AlbertTokenizer.from_pretrained("albert-base-v2")  # doctest: +SKIP
    >>> tok("Hello, my dog is cute")["input_ids"]  # doctest: +SKIP
    [2, 10975, 15, 51, 1952, 25, 10901, 3]
"""

from albertkit.tokenization.encoder import SPIECE_UNDERLINE, SentencePieceEncoder, TokenizerError
from albertkit.tokenization.encoding import TENSOR_TYPES, BatchEncoding, pad_rows
from albertkit.tokenization.normalizer import Normalizer
from albertkit.tokenization.tokenizer import (
    SPECIAL_TOKENS_MAP_FILE,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
    VOCAB_FILE,
    AlbertTokenizer,
)
from albertkit.tokenization.train import ALBERT_CONTROL_SYMBOLS, ALBERT_USER_SYMBOLS, train_tokenizer

__all__ = ["AlbertTokenizer", "BatchEncoding", "TokenizerError", "train_tokenizer"]
