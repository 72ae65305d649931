"""Parity of albertkit's AlbertTokenizer with transformers.

References (see tests/golden/make_tokenization_golden.py and tokenization_parity_data.py):
* ids: transformers 4.57.1's slow AlbertTokenizer (SentencePiece), which transformers 5 no longer has;
  its outputs are recorded in tests/golden/tokenization_slow_hf4.json (full rows for the hard cases,
  a digest per row for the sample, a digest per file for the whole corpus / GLUE / SQuAD);
* offsets, word ids, sequence ids, and ids again at run time: transformers 5.24's AlbertTokenizer
  (the `tokenizers` one) loaded from the tokenizer.json transformers' AlbertConverter makes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tokenization_parity_data as D
from conftest import require_reference

GOLDEN = json.loads((Path(__file__).parent / "golden" / "tokenization_slow_hf4.json").read_text(encoding="utf-8"))
FIELDS = ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask")


@pytest.fixture(scope="module")
def tok(spiece_path):
    from albertkit import AlbertTokenizer

    return AlbertTokenizer(spiece_path)


@pytest.fixture(scope="module")
def hf_fast(spiece_path, tmp_path_factory):
    require_reference("transformers")
    return D.hf_fast_reference(spiece_path, tmp_path_factory.mktemp("hf_fast"))


def _row(tok, x):
    enc = tok(*x, return_special_tokens_mask=True) if isinstance(x, tuple) else tok(x, return_special_tokens_mask=True)
    return {k: enc[k] for k in FIELDS}


def _batch_digests(tok, items):
    """Digests of rows built from encode_batch (the bulk path), so the sample costs little."""
    texts = [x[0] if isinstance(x, tuple) else x for x in items]
    pairs = [x[1] for x in items if isinstance(x, tuple)]
    ids = tok.encode_batch(texts + pairs)
    out, k = [], len(texts)
    for n, x in enumerate(items):
        a = ids[n]
        if isinstance(x, tuple):
            b = ids[k]
            k += 1
            row = {"input_ids": tok.build_inputs_with_special_tokens(a, b),
                   "token_type_ids": tok.create_token_type_ids_from_sequences(a, b),
                   "special_tokens_mask": tok.get_special_tokens_mask(a, b)}
        else:
            row = {"input_ids": tok.build_inputs_with_special_tokens(a),
                   "token_type_ids": tok.create_token_type_ids_from_sequences(a),
                   "special_tokens_mask": tok.get_special_tokens_mask(a)}
        row["attention_mask"] = [1] * len(row["input_ids"])
        out.append(D.row_digest(row))
    return out


def test_golden_was_made_by_the_slow_tokenizer():
    assert GOLDEN["generator"].startswith("transformers 4.") and "slow" in GOLDEN["generator"]


@pytest.mark.parametrize("case", GOLDEN["hard_cases"], ids=lambda c: repr(c["input"])[:40])
def test_hard_cases_match_slow(tok, case):
    x = tuple(case["input"]) if isinstance(case["input"], list) else case["input"]
    assert _row(tok, x) == {k: case[k] for k in FIELDS}


def test_hard_case_tokens_match_slow(tok):
    texts = [x for x in D.HARD_CASES if isinstance(x, str)]
    for text, expected in zip(texts, GOLDEN["hard_cases_tokens"]):
        # the slow tokenizer shows an unknown character as itself; its id is <unk> in both
        ours = tok.tokenize(text)
        assert len(ours) == len(expected), text
        for a, b in zip(ours, expected):
            assert a == b or (a == "<unk>" and tok.convert_tokens_to_ids(b) == tok.unk_token_id), (text, a, b)


def test_corpus_sample_matches_slow(tok, shared_data):
    sample = D.corpus_sample(shared_data / "corpus")
    assert [(f, i) for f, i, _ in sample] == [(f, i) for f, i, _ in GOLDEN["corpus_sample"]]
    assert len(sample) > 2500 and len({f.split("/")[0] for f, _, _ in sample}) == 7  # every corpus folder
    got = _batch_digests(tok, [line for _, _, line in sample])
    bad = [(f, i) for (f, i, d), g in zip(GOLDEN["corpus_sample"], got) if d != g]
    assert not bad, f"{len(bad)} lines differ from the slow tokenizer, first: {bad[:5]}"


def test_corpus_sample_call_path_matches_bulk_path(tok, shared_data):
    # __call__ (the aligned path, with offsets) and encode_batch must give the same ids
    lines = [line for _, _, line in D.corpus_sample(shared_data / "corpus")][::10]
    enc = tok(lines, add_special_tokens=False, return_offsets_mapping=True)
    assert enc["input_ids"] == tok.encode_batch(lines)


def test_glue_squad_sample_matches_slow(tok, shared_data):
    examples = D.glue_squad_examples(shared_data)
    assert set(examples) == set(GOLDEN["glue_squad_sample"])
    for name, items in examples.items():
        got = _batch_digests(tok, items[:: D.PAIR_STEP_SAMPLE])
        want = GOLDEN["glue_squad_sample"][name]
        assert len(got) == len(want), name
        bad = [n for n, (a, b) in enumerate(zip(got, want)) if a != b]
        assert not bad, f"{name}: {len(bad)} examples differ, first sample positions {bad[:5]}"


def test_glue_pairs_call_matches_slow(tok, shared_data):
    # the pair path of __call__ itself (not the bulk helper) on real pairs
    items = D.glue_squad_examples(shared_data)["MRPC/dev"][:: D.PAIR_STEP_SAMPLE]
    want = GOLDEN["glue_squad_sample"]["MRPC/dev"]
    assert [D.row_digest(_row(tok, x)) for x in items] == want


def _compare_with_fast(tok, hf, items):
    """(#items, #same ids, list of offset/word/sequence mismatches on rows whose ids agree)."""
    same, problems = 0, []
    for x in items:
        args = x if isinstance(x, tuple) else (x,)
        a = tok(*args, return_offsets_mapping=True)
        b = hf(*args, return_offsets_mapping=True)
        if a["input_ids"] != b["input_ids"]:
            continue
        same += 1
        ours = [tuple(o) for o in a["offset_mapping"]]
        theirs = [tuple(o) for o in b["offset_mapping"]]
        if ours != theirs or a.word_ids() != b.word_ids() or a.sequence_ids() != b.sequence_ids():
            problems.append(x)
    return len(items), same, problems


# Where slow and fast normalise differently, ids stay the slow ones; offsets can then differ in
# the fast tokenizer's favour of its own normalisation. The one such input in the hard cases:
# U+FE0F (variation selector, category Mn but combining class 0) is dropped by the fast
# tokenizer's StripAccents but kept by the slow one's unicodedata.combining test, so the <unk>
# covering "❤️" spans two characters here and one there.
KNOWN_OFFSET_DIFFERENCES = {"Emoji 😀 👍🏽 👨\u200d👩\u200d👧 ❤️ and 🇺🇸 flags"}


def test_offsets_and_word_ids_match_fast_on_hard_cases(tok, hf_fast):
    items = [x for x in D.HARD_CASES if x not in KNOWN_OFFSET_DIFFERENCES]
    n, same, problems = _compare_with_fast(tok, hf_fast, items)
    assert not problems, problems
    assert same >= n - 1  # ('first only', '') is the one id difference, tested below


def test_known_offset_difference_is_only_the_variation_selector(tok, hf_fast):
    (text,) = KNOWN_OFFSET_DIFFERENCES
    a = tok(text, return_offsets_mapping=True)
    b = hf_fast(text, return_offsets_mapping=True)
    assert a["input_ids"] == b["input_ids"]
    diff = [(x, y) for x, y in zip(a["offset_mapping"], b["offset_mapping"]) if tuple(x) != tuple(y)]
    assert diff == [((17, 19), (17, 18))] and text[17:19] == "❤\ufe0f"


def test_offsets_match_fast_on_corpus_and_squad_sample(tok, hf_fast, shared_data):
    sample = [line for _, _, line in D.corpus_sample(shared_data / "corpus")][::6]
    squad = D.glue_squad_examples(shared_data)["squad/dev-v1.1.json"][::200]
    n, same, problems = _compare_with_fast(tok, hf_fast, sample + squad)
    assert same == n, f"{n - same} rows with different ids"
    assert not problems, [repr(p)[:80] for p in problems[:5]]


def test_empty_second_text_is_a_pair_like_slow(tok, hf_fast):
    # Deliberate: transformers 5 treats text_pair="" as "no pair" and drops the second [SEP]; the
    # slow tokenizer (golden) and albertkit keep the pair structure, so the segment ids stay meaningful.
    assert tok("first only", "")["input_ids"] == [2, 64, 104, 3, 3]
    assert hf_fast("first only", "")["input_ids"] == [2, 64, 104, 3]


def test_offsets_point_into_the_original_text(tok):
    # spans are in the text as given (before lowercasing, accent stripping, quote replacement);
    # "``" maps to its second character and a lone "▁" to the character after it, as in transformers
    text = "  Crème  BRÛLÉE, ``quoted'' 92000, [MASK]!"
    enc = tok(text, return_offsets_mapping=True)
    assert enc.tokens() == ["[CLS]", "▁cre", "me", "▁bru", "lee", ",", "▁", '"', "quo", "ted", '"', "▁9", "2000", ",",
                            "[MASK]", "▁", "!", "[SEP]"]
    assert [text[s:e] for s, e in enc["offset_mapping"]] == [
        "", "Crè", "me", "BRÛ", "LÉE", ",", "`", "`", "quo", "ted", "'", "9", "2000", ",", " [MASK]", "!", "!", ""]


@pytest.mark.slow
def test_whole_corpus_matches_slow(tok, shared_data):
    assert "corpus_full" in GOLDEN, "the golden file was made without --full: regenerate it (tests/golden/make_tokenization_golden.py)"
    bad = []
    for path in D.corpus_files(shared_data / "corpus"):
        rel = str(path.relative_to(shared_data / "corpus"))
        digest = D.rows_digest(_batch_digests(tok, D.file_lines(path)))
        if digest != GOLDEN["corpus_full"][rel]:
            bad.append(rel)
    assert len(GOLDEN["corpus_full"]) == len(D.corpus_files(shared_data / "corpus"))
    assert not bad, f"files whose ids differ from the slow tokenizer: {bad}"


@pytest.mark.slow
def test_all_glue_squad_match_slow(tok, shared_data):
    assert "glue_squad_full" in GOLDEN, "the golden file was made without --full: regenerate it (tests/golden/make_tokenization_golden.py)"
    for name, items in D.glue_squad_examples(shared_data).items():
        assert D.rows_digest(_batch_digests(tok, items)) == GOLDEN["glue_squad_full"][name], name
