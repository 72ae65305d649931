"""The two ways through the SentencePiece encoder give the same tokens (issue 13).

The bulk path (``encode_ids`` / ``encode_words``: SentencePiece's batch encoder, no alignment) is
the fast path; the aligned path (``encode_aligned``: offsets through the normaliser's character
map) is the one the goldens check offsets on. Seeded random real sentences and seeded adversarial
Unicode strings must get the same ids and word ids from both, under every normaliser setting.
(hypothesis is not a dependency; the seeds make failures reproducible.)
"""

from __future__ import annotations

import random

import pytest

import tokenization_parity_data as D

# Characters that stress each step: whitespace kinds, quotes, combining marks, compatibility forms
# (ligatures, fullwidth, superscripts, a math capital sigma whose NFKD is "Σ"), zero-width and control
# characters SentencePiece deletes, digits and commas (the digit-comma rule), special-token text,
# characters outside the vocabulary, astral-plane emoji with modifiers and joiners.
ADVERSARIAL = [
    " ", " ", " ", "\t", "\n", "\r\n", "\u00a0", "\u2003", "\u3000", "\u2007", "``", "''", "`", "'", '"',
    "\u0301", "\u0308", "\u0327", "e\u0301", "é", "Å", "ß", "ẞ", "İ", "ı", "\u212a", "Σ", "ς", "\U0001d6ba",
    "ﬁ", "ﬂ", "Ａ", "１", "，", "²", "½", "¨", "´", "˜", "\u200b", "\u200d", "\ufeff", "\ufe0f", "\x00", "\x07",
    "\x7f", "0", "1", "9", ",", "1,", "22,", "333,444", ",5", "3,000", ".", "(", ")", "-", "–", "£", "€",
    "[MASK]", " [MASK]", "[SEP]", "[CLS]", "<pad>", "<unk>", "[mask]", "東京", "한국", "ༀ", "٣", "१",
    "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇺🇸", "a", "b", "x", "Hello", "WORLD", "naïve", "the", "ing",
]


def _adversarial(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ADVERSARIAL) for _ in range(rng.randint(0, 12))) for _ in range(n)]


def _real(shared_data, seed: int, n: int) -> list[str]:
    """``n`` random non-blank lines of 40 random corpus files."""
    rng = random.Random(seed)
    files = rng.sample(D.corpus_files(shared_data / "corpus"), 40)
    lines = [line for path in files for line in D.file_lines(path) if line.strip()]
    return rng.sample(lines, n)


@pytest.fixture(scope="module")
def tokenizers(spiece_path):
    from albertkit.tokenization import AlbertTokenizer

    return {
        "default": AlbertTokenizer(spiece_path, num_threads=1),
        "cased+accents": AlbertTokenizer(spiece_path, do_lower_case=False, keep_accents=True, num_threads=1),
        "keep spaces": AlbertTokenizer(spiece_path, remove_space=False, num_threads=1),
    }


def _check_paths_agree(tok, texts: list[str]) -> None:
    bulk_ids = tok.encoder.encode_ids(texts)
    bulk = tok.encoder.encode_words(texts)
    for text, ids, words in zip(texts, bulk_ids, bulk):
        aligned = tok.encoder.encode_aligned(text)
        assert aligned.ids == ids == words.ids, repr(text)
        assert aligned.words == words.words, repr(text)
        assert len(aligned.offsets) == len(ids) == len(aligned.pieces), repr(text)
        assert all(0 <= s < e <= len(text) for s, e in aligned.offsets), repr(text)


@pytest.mark.parametrize("setting", ["default", "cased+accents", "keep spaces"])
def test_bulk_and_aligned_agree_on_adversarial_unicode(tokenizers, setting):
    _check_paths_agree(tokenizers[setting], _adversarial(seed=13, n=300))


def test_bulk_and_aligned_agree_on_random_real_sentences(tokenizers, shared_data):
    texts = _real(shared_data, seed=13, n=200)
    assert sum(len(t) for t in texts) > 10_000  # real sentences, not a handful of words
    _check_paths_agree(tokenizers["default"], texts)


def test_bulk_and_aligned_agree_on_hard_cases(tokenizers):
    texts = [x for case in D.HARD_CASES for x in ([case] if isinstance(case, str) else case)]
    for tok in tokenizers.values():
        _check_paths_agree(tok, texts)


def test_word_ids_are_the_same_with_and_without_offsets(tokenizers):
    # __call__ takes word ids from the bulk pass unless offsets are asked for; a pair, truncated and padded
    tok = tokenizers["default"]
    texts = _adversarial(seed=7, n=40)
    kwargs = dict(truncation="only_second", max_length=24, padding="max_length")
    plain = tok(texts[:20], texts[20:], **kwargs)
    aligned = tok(texts[:20], texts[20:], return_offsets_mapping=True, **kwargs)
    assert plain["input_ids"] == aligned["input_ids"]
    for i in range(20):
        assert plain.word_ids(i) == aligned.word_ids(i) and plain.sequence_ids(i) == aligned.sequence_ids(i)


def test_normalizer_align_spans_each_character():
    from albertkit.tokenization import Normalizer

    norm = Normalizer()
    text = "  Ab\u00a0 ``Ça''  Ｘ\U0001d6ba "
    out, starts, ends = norm.align(text)
    # the whole word decides the characters: NFKD turns the math capital into a word-final "ς"
    assert out == norm(text) == 'ab "ca" xς'
    assert len(starts) == len(ends) == len(out)
    assert [text[s:e] for s, e in zip(starts, ends)] == ["A", "b", "\u00a0 ", "`", "Ç", "a", "'", "  ", "Ｘ", "\U0001d6ba"]


def test_pad_rows_pads_every_column_to_the_target():
    from albertkit.tokenization import pad_rows

    rows = [{"input_ids": [2, 7, 3], "attention_mask": [1, 1, 1]}, {"input_ids": [2, 3], "attention_mask": [1, 1]}]
    assert pad_rows(rows, {"input_ids": 0, "attention_mask": 0}) == 3
    assert rows[1] == {"input_ids": [2, 3, 0], "attention_mask": [1, 1, 0]}
    assert pad_rows(rows, {"input_ids": 0, "attention_mask": 0}, length=4, multiple_of=3) == 6
    assert rows[0] == {"input_ids": [2, 7, 3, 0, 0, 0], "attention_mask": [1, 1, 1, 0, 0, 0]}
    assert pad_rows([], {"input_ids": 0}) == 0
