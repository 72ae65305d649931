"""AlbertTokenizer API: golden ids, batching, padding/truncation/overflow against transformers,
save/load both ways, decode, bad input, training and the command line."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import tokenization_parity_data as D
from conftest import require_reference

# ALBERT_REFERENCE.md section 2 (model card / transformers' integration test values).
KNOWN_IDS = {
    "Hello, my dog is cute": [2, 10975, 15, 51, 1952, 25, 10901, 3],
    "nguyen duc thang": [2, 20449, 13, 8484, 119, 263, 3],
}
KNOWN_PIECES = {
    "<pad>": 0, "<unk>": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "(": 5, ")": 6, '"': 7, "-": 8, ".": 9,
    "\u2013": 10, "£": 11, "€": 12, "▁": 13, "▁the": 14, ",": 15, "▁modeling": 12807, "▁modelling": 23089,
    "▁model": 1061, "▁runway": 8014, "▁lingerie": 29104, "▁chauffeur": 28744, "▁janitor": 29477,
    "▁shoemaker": 29024, "▁blacksmith": 21238, "▁lawyer": 3672, "▁receptionist": 25331, "▁paramedic": 23386,
    "▁waitress": 13678, "▁eloquent": 29999,
}


@pytest.fixture(scope="module")
def tok(spiece_path):
    from albertkit import AlbertTokenizer

    return AlbertTokenizer(spiece_path)


@pytest.fixture(scope="module")
def hf_fast(spiece_path, tmp_path_factory):
    require_reference("transformers")
    return D.hf_fast_reference(spiece_path, tmp_path_factory.mktemp("hf_fast"))


# -- golden values -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", sorted(KNOWN_IDS))
def test_known_ids(tok, text):
    assert tok.encode(text) == KNOWN_IDS[text]
    assert tok(text)["input_ids"] == KNOWN_IDS[text]


def test_known_pieces_and_special_ids(tok):
    for piece, i in KNOWN_PIECES.items():
        assert tok.convert_tokens_to_ids(piece) == i
        assert tok.convert_ids_to_tokens(i) == piece
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 1, 2, 3, 4)
    assert sorted(tok.all_special_ids) == [0, 1, 2, 3, 4]
    assert tok.vocab_size == len(tok) == len(tok.get_vocab()) == 30000
    assert tok.model_max_length == 512


def test_reference_digit_comma_example(tok):
    # ALBERT_REFERENCE.md section 2, with keep_accents
    from albertkit import AlbertTokenizer

    keep = AlbertTokenizer(tok.vocab_file, keep_accents=True)
    assert keep.tokenize("I was born in 92000, and this is falsé.") == [
        "▁i", "▁was", "▁born", "▁in", "▁9", "2000", ",", "▁and", "▁this", "▁is", "▁fal", "s", "é", "."]
    assert tok.tokenize("I was born in 92000, and this is falsé.")[-2:] == ["▁false", "."]


def test_mask_absorbs_space_and_is_case_sensitive(tok):
    assert tok.tokenize("a [MASK] b") == ["▁a", "[MASK]", "▁b"]
    assert tok.tokenize("a[MASK]b") == tok.tokenize("a [MASK] b")
    assert "[MASK]" not in tok.tokenize("a [mask] b")


def test_cased_tokenizer_keeps_case(spiece_path):
    from albertkit import AlbertTokenizer

    cased = AlbertTokenizer(spiece_path, do_lower_case=False)
    assert cased.tokenize("Hello")[0] != "▁hello"


# -- bulk path -------------------------------------------------------------------------------------


def test_encode_batch_equals_encode(tok, shared_data):
    lines = [line for _, _, line in D.corpus_sample(shared_data / "corpus")][::15] + [x for x in D.HARD_CASES if isinstance(x, str)]
    batch = tok.encode_batch(lines)
    assert batch == [tok.encode(t, add_special_tokens=False) for t in lines]
    assert tok.encode_batch(lines[:5], add_special_tokens=True) == [tok.encode(t) for t in lines[:5]]
    assert tok.encode_batch([]) == []


def test_word_start_mask(tok):
    mask = tok.word_start_mask()
    assert mask.dtype == np.bool_ and mask.shape == (30000,)
    assert mask[[0, 1, 2, 3, 4, 13, 14, 1061]].all()  # specials, "▁", "▁the", "▁model"
    assert not mask[15] and not mask[tok.convert_tokens_to_ids("2000")]
    ids = tok.encode("shoemakers unbelievably", add_special_tokens=False)
    assert [bool(mask[i]) for i in ids] == [tok.convert_ids_to_tokens(i).startswith("▁") for i in ids]
    assert tok.is_word_start(14) and not tok.is_word_start(15)


# -- __call__ against transformers ---------------------------------------------------------------

PAIRS = [
    ("What is ALBERT?", "ALBERT is A Lite BERT for self-supervised learning of language representations, from 2019."),
    ("Who wrote it?", "Lan, Chen, Goodman, Gimpel, Sharma and Soricut."),
    ("A rather long question that goes on and on about many things?", "Short."),
]


def _same(ours, theirs, keys):
    for k in keys:
        a, b = ours[k], theirs[k]
        a = a.tolist() if hasattr(a, "tolist") else a
        b = b.tolist() if hasattr(b, "tolist") else b
        if k == "offset_mapping":
            a = [[tuple(x) for x in r] for r in a] if a and isinstance(a[0], list) and a[0] and isinstance(a[0][0], (list, tuple)) else [tuple(x) for x in a]
            b = [[tuple(x) for x in r] for r in b] if b and isinstance(b[0], list) and b[0] and isinstance(b[0][0], (list, tuple)) else [tuple(x) for x in b]
        assert a == b, (k, a, b)


KEYS = ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask", "offset_mapping")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"padding": True},
        {"padding": "max_length", "max_length": 40},
        {"padding": True, "pad_to_multiple_of": 8},
        {"truncation": True, "max_length": 12},
        {"truncation": "only_second", "max_length": 24, "padding": "max_length"},
        {"truncation": "only_first", "max_length": 30},
        {"truncation": "longest_first", "max_length": 15},
        {"add_special_tokens": False, "padding": True},
    ],
    ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "plain",
)
def test_batch_of_pairs_matches_transformers(tok, hf_fast, kwargs):
    a = [p[0] for p in PAIRS]
    b = [p[1] for p in PAIRS]
    common = dict(return_special_tokens_mask=True, return_offsets_mapping=True, return_token_type_ids=True, **kwargs)
    ours, theirs = tok(a, b, **common), hf_fast(a, b, **common)
    _same(ours, theirs, KEYS)
    for i in range(len(PAIRS)):
        assert ours.word_ids(i) == theirs.word_ids(i)
        assert ours.sequence_ids(i) == theirs.sequence_ids(i)


def test_list_of_pairs_equals_text_and_text_pair(tok):
    assert tok([list(p) for p in PAIRS])["input_ids"] == tok([p[0] for p in PAIRS], [p[1] for p in PAIRS])["input_ids"]


@pytest.mark.parametrize("strategy", ["only_second", "only_first"])
def test_overflowing_windows_match_transformers(tok, hf_fast, strategy):
    q, c = "Where did the Normans live?", " ".join(["The Normans were people who in the 10th and 11th centuries gave their name to Normandy, a region in France."] * 4)
    args = (q, c) if strategy == "only_second" else (c, q)
    kw = dict(truncation=strategy, max_length=40, stride=8, return_overflowing_tokens=True, return_token_type_ids=True,
              return_offsets_mapping=True, return_special_tokens_mask=True, padding="max_length")
    ours, theirs = tok(*args, **kw), hf_fast(*args, **kw)
    assert len(ours["input_ids"]) > 2
    _same(ours, theirs, KEYS + ("overflow_to_sample_mapping",))
    for i in range(len(ours["input_ids"])):
        assert ours.sequence_ids(i) == theirs.sequence_ids(i)
        assert ours.word_ids(i) == theirs.word_ids(i)


def test_overflow_on_a_batch_of_single_texts(tok, hf_fast):
    texts = ["one two three four five six seven eight nine ten eleven twelve", "short"]
    kw = dict(truncation=True, max_length=6, stride=2, return_overflowing_tokens=True)
    ours, theirs = tok(texts, **kw), hf_fast(texts, **kw)
    _same(ours, theirs, ("input_ids", "overflow_to_sample_mapping"))


def test_return_tensors(tok, hf_fast):
    pt = tok(["a b c", "d"], padding=True, return_tensors="pt")
    import torch

    assert pt["input_ids"].dtype == torch.long and pt["input_ids"].shape == (2, 5)
    assert pt.to("cpu") is pt and pt.input_ids is pt["input_ids"]
    npy = tok("a b c", return_tensors="np")
    assert isinstance(npy["input_ids"], np.ndarray) and npy["input_ids"].shape == (1, 5)
    assert npy["input_ids"].tolist() == hf_fast("a b c", return_tensors="np")["input_ids"].tolist()
    with pytest.raises(ValueError, match="padding=True"):
        tok(["a b c", "d"], return_tensors="pt")


def test_word_ids_without_offsets(tok, hf_fast):
    text = "Hello [MASK] world, 3,000 naïve CAFÉS!"
    assert tok(text).word_ids() == hf_fast(text).word_ids()
    enc = tok([text, "x"], padding=True)
    assert enc.word_ids(1)[-1] is None and enc.sequence_ids(1)[-1] is None
    assert pickle.loads(pickle.dumps(enc)).word_ids(0) == enc.word_ids(0)


def test_special_token_helpers(tok, hf_fast):
    a, b = [10, 11, 12], [20, 21]
    assert tok.build_inputs_with_special_tokens(a) == [2, 10, 11, 12, 3]
    assert tok.build_inputs_with_special_tokens(a, b) == [2, 10, 11, 12, 3, 20, 21, 3]
    assert tok.get_special_tokens_mask(a, b) == [1, 0, 0, 0, 1, 0, 0, 1]
    assert tok.create_token_type_ids_from_sequences(a, b) == [0, 0, 0, 0, 0, 1, 1, 1]
    assert tok.get_special_tokens_mask([2, 10, 3], already_has_special_tokens=True) == [1, 0, 1]
    # the same layout transformers builds for real text
    enc = hf_fast("x y", "z", return_token_type_ids=True, return_special_tokens_mask=True)
    ids = tok.encode_batch(["x y", "z"])
    assert enc["input_ids"] == tok.build_inputs_with_special_tokens(*ids)
    assert enc["token_type_ids"] == tok.create_token_type_ids_from_sequences(*ids)
    assert enc["special_tokens_mask"] == tok.get_special_tokens_mask(*ids)


def test_too_short_to_truncate_raises_like_transformers(tok, hf_fast):
    long_first = " ".join(["word"] * 20)
    with pytest.raises(ValueError, match="first sequence alone has 20 tokens"):
        tok(long_first, "short", truncation="only_second", max_length=10)
    with pytest.raises(Exception, match="too short"):
        hf_fast(long_first, "short", truncation="only_second", max_length=10)


def test_longest_first_follows_slow_not_transformers5(tok, hf_fast):
    # Deliberate (module docstring): equal lengths 10+10 into 15 -> the transformers 4 slow tokenizer
    # and Google's _truncate_seq_pair remove one token at a time from the longer (ties: second) ->
    # (8, 7); tokenizers gives (7, 8). Every length relation: tests/test_tokenization_truncation.py.
    a = " ".join(["alpha"] * 10)
    b = " ".join(["beta"] * 10)
    ours = tok(a, b, truncation="longest_first", max_length=18)
    assert ours["token_type_ids"].count(0) == 8 + 2
    theirs = hf_fast(a, b, truncation="longest_first", max_length=18, return_token_type_ids=True)
    assert theirs["token_type_ids"].count(0) == 7 + 2


# -- decode ----------------------------------------------------------------------------------------


def test_decode_matches_transformers5(tok, hf_fast):
    for text in ["Hello, my dog is cute [MASK].", "It's 3,000 naïve cafés!", "a  b\tc", "", "[CLS] [MASK] x", "a [MASK][MASK] b"]:
        ids = tok.encode(text)
        assert tok.decode(ids) == hf_fast.decode(ids)
        assert tok.decode(ids, skip_special_tokens=True) == hf_fast.decode(ids, skip_special_tokens=True)
    batch = tok(["one", "two three"], padding=True)["input_ids"]
    assert tok.batch_decode(batch, skip_special_tokens=True) == ["one", "two three"]
    import torch

    assert tok.decode(torch.tensor(batch[0])) == tok.decode(batch[0])
    for ids in ([13, 13, 21, 13], [4, 13, 21], [1, 62]):
        assert tok.decode(ids) == hf_fast.decode(ids)


def test_round_trip_gives_normalised_text(tok, shared_data):
    lines = [l for _, _, l in D.corpus_sample(shared_data / "corpus") if l.strip() and l.isascii()][:200]
    for line in lines:
        decoded = tok.decode(tok.encode(line), skip_special_tokens=True)
        if tok.unk_token_id in tok.encode(line):
            continue
        assert decoded == tok._normalize(line), line


# -- save / load -------------------------------------------------------------------------------------


def test_save_pretrained_loads_in_transformers(tok, tmp_path):
    transformers = require_reference("transformers")
    tok.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"spiece.model", "tokenizer_config.json", "special_tokens_map.json"}
    for cls in (transformers.AlbertTokenizer, transformers.AutoTokenizer):
        hf = cls.from_pretrained(str(tmp_path))
        assert hf("Hello, my dog is cute")["input_ids"] == KNOWN_IDS["Hello, my dog is cute"]
        assert hf.mask_token == "[MASK]" and hf.pad_token_id == 0 and hf.do_lower_case


def test_from_pretrained_folder_file_and_options(tok, tmp_path, spiece_path):
    from albertkit import AlbertTokenizer

    tok.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    cfg["keep_accents"] = True
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(cfg))
    loaded = AlbertTokenizer.from_pretrained(tmp_path)
    assert loaded.keep_accents and loaded.tokenize("é") != tok.tokenize("é")
    assert AlbertTokenizer.from_pretrained(tmp_path, keep_accents=False).tokenize("é") == tok.tokenize("é")
    direct = AlbertTokenizer.from_pretrained(spiece_path)
    assert direct.encode("Hello, my dog is cute") == KNOWN_IDS["Hello, my dog is cute"]


def test_from_pretrained_reads_a_transformers_folder(tmp_path, spiece_path):
    transformers = require_reference("transformers")
    from albertkit import AlbertTokenizer

    transformers.AlbertTokenizer.from_pretrained(str(spiece_path.parent), do_lower_case=False).save_pretrained(str(tmp_path))
    assert (tmp_path / "tokenizer_config.json").is_file()
    if not (tmp_path / "spiece.model").is_file():  # transformers 5 saves tokenizer.json only
        (tmp_path / "spiece.model").write_bytes(spiece_path.read_bytes())
    assert AlbertTokenizer.from_pretrained(tmp_path).do_lower_case is False


# -- bad input --------------------------------------------------------------------------------------


def test_bad_text_input(tok):
    with pytest.raises(TypeError, match="None"):
        tok(None)
    with pytest.raises(TypeError, match="text\\[1\\]"):
        tok(["ok", 3])
    with pytest.raises(TypeError, match="int"):
        tok.encode(5)
    with pytest.raises(TypeError, match="texts\\[0\\]"):
        tok.encode_batch([b"bytes"])
    with pytest.raises(TypeError, match="single str"):
        tok.encode_batch("a string")
    with pytest.raises(ValueError, match="text_pair has 1"):
        tok(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="padding"):
        tok("a", padding="sideways")
    with pytest.raises(ValueError, match="truncation"):
        tok("a", truncation="middle")
    with pytest.raises(ValueError, match="stride"):
        tok("a b c d e f g", truncation=True, max_length=4, stride=3, return_overflowing_tokens=True)
    with pytest.raises(ValueError, match="only_first"):
        tok("a b", "c d", truncation=True, max_length=5, return_overflowing_tokens=True)
    with pytest.raises(IndexError, match="out of range"):
        tok.convert_ids_to_tokens(30000)


def test_empty_and_whitespace_text_is_defined(tok):
    for text in ("", "   ", "\t\n"):
        assert tok(text)["input_ids"] == [2, 3]
        assert tok.tokenize(text) == []
    assert tok.encode_batch(["", " "]) == [[], []]


def test_missing_and_corrupt_model(tmp_path):
    from albertkit import AlbertTokenizer
    from albertkit.tokenization import TokenizerError

    with pytest.raises(TokenizerError, match="not found"):
        AlbertTokenizer(tmp_path / "nope.model")
    bad = tmp_path / "spiece.model"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(TokenizerError, match="not a valid SentencePiece model"):
        AlbertTokenizer(bad)
    with pytest.raises(TokenizerError, match="not a valid SentencePiece model"):
        AlbertTokenizer.from_pretrained(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TokenizerError, match="neither spiece.model nor tokenizer.json"):
        AlbertTokenizer.from_pretrained(tmp_path / "empty")


def test_unknown_hub_name_offline_is_a_clear_error(monkeypatch):
    from albertkit import AlbertTokenizer, ModelNotFoundError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="spiece.model"):
        AlbertTokenizer.from_pretrained("no-such-org/no-such-albert")


def test_corrupt_tokenizer_config(tmp_path, tok):
    from albertkit import AlbertTokenizer
    from albertkit.tokenization import TokenizerError

    tok.save_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="tokenizer_config.json"):
        AlbertTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": "yes"}))
    with pytest.raises(TokenizerError, match="do_lower_case"):
        AlbertTokenizer.from_pretrained(tmp_path)


# -- training and CLI ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(shared_data, tmp_path_factory):
    from albertkit import train_tokenizer

    files = sorted((shared_data / "corpus" / "inaugural").glob("*.txt"))[:12]
    return train_tokenizer(files, 300, tmp_path_factory.mktemp("trained") / "tok", max_sentences=1500, progress=False)


def test_train_tokenizer_has_albert_layout(trained):
    from albertkit import AlbertTokenizer

    tok = AlbertTokenizer.from_pretrained(trained)
    assert len(tok) == 300
    assert tok.convert_ids_to_tokens(list(range(13))) == ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]", *D_USER]
    assert tok.sp.IsControl(2) and tok.sp.IsControl(4) and tok.sp.IsUnknown(1)
    enc = tok("Fellow citizens of the Senate [MASK].")
    assert enc["input_ids"][0] == 2 and 4 in enc["input_ids"] and enc["input_ids"][-1] == 3
    assert tok.decode(enc["input_ids"], skip_special_tokens=True) == "fellow citizens of the senate ."


D_USER = ["(", ")", '"', "-", ".", "\u2013", "£", "€"]


def test_trained_tokenizer_loads_in_transformers(trained):
    transformers = require_reference("transformers")
    from albertkit import AlbertTokenizer

    hf = transformers.AlbertTokenizer.from_pretrained(str(trained))
    ours = AlbertTokenizer.from_pretrained(trained)
    text = "My fellow citizens, we meet today."
    assert hf(text)["input_ids"] == ours(text)["input_ids"]


def test_train_tokenizer_bad_input(tmp_path):
    from albertkit import train_tokenizer
    from albertkit.tokenization import TokenizerError

    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\n\xff\xfe broken\n")
    with pytest.raises(TokenizerError, match=r"bad.txt, line 2: invalid UTF-8"):
        train_tokenizer([bad], 50, tmp_path / "out", progress=False)
    with pytest.raises(TokenizerError, match="not found"):
        train_tokenizer([tmp_path / "missing.txt"], 50, tmp_path / "out", progress=False)
    with pytest.raises(TokenizerError, match="vocab_size"):
        train_tokenizer([bad], 5, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_tokenize_and_train(tmp_path, spiece_path, capsys, shared_data):
    from albertkit.cli import main

    assert main(["tokenize", "Hello, my dog is cute", "--model", str(spiece_path.parent), "--tokens"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["input_ids"] == KNOWN_IDS["Hello, my dog is cute"] and out["tokens"][1] == "▁hello"
    lines = tmp_path / "lines.txt"
    lines.write_text("Hello, my dog is cute\nnguyen duc thang\n", encoding="utf-8")
    assert main(["tokenize", "--file", str(lines), "--model", str(spiece_path)]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [r["input_ids"] for r in rows] == [KNOWN_IDS["Hello, my dog is cute"], KNOWN_IDS["nguyen duc thang"]]
    lines.write_bytes(b"ok\n\xff\n")
    assert main(["tokenize", "--file", str(lines), "--model", str(spiece_path)]) == 2
    assert "line 2: invalid UTF-8" in capsys.readouterr().err
    assert main(["tokenize", "--model", str(spiece_path)]) == 2
    src = shared_data / "corpus" / "inaugural" / "1789-Washington.txt"
    assert main(["-q", "train-tokenizer", str(src), "--vocab-size", "120", "--output", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t" / "spiece.model").is_file()
