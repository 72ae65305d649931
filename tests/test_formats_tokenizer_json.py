"""tokenizer.json folders (transformers 5) <-> albertkit's SentencePiece tokenizer.

The folders under test are made by transformers 5 itself, from the shared albert-base-v2
spiece.model: ``AlbertTokenizer.from_pretrained(spiece folder).save_pretrained`` (what every
ALBERT saved with transformers 5 looks like), and the hub layout that transformers' own
``AlbertConverter`` writes (digit-comma pieces scored -100, no user symbols as added tokens).
The reference ids are albertkit's tokenizer on the original spiece.model, itself pinned to the
transformers 4 slow tokenizer by test_tokenization_parity.py.

Full corpus + every GLUE/SQuAD dev text (118,292 texts): ``pytest -m slow tests/test_formats_tokenizer_json.py``.
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import require_reference

import tokenization_parity_data as D

require_reference("transformers")
pb2 = require_reference("sentencepiece.sentencepiece_model_pb2")


def _texts(shared_data, full: bool) -> list[str]:
    if full:
        lines = [line for f in D.corpus_files(shared_data / "corpus") for line in D.file_lines(f)][::7]
    else:
        lines = [line for _, _, line in D.corpus_sample(shared_data / "corpus")]
    for items in D.glue_squad_examples(shared_data).values():
        for x in items if full else items[:: D.PAIR_STEP_SAMPLE]:
            lines.extend(x if isinstance(x, tuple) else [x])
    return lines + [x for x in D.HARD_CASES if isinstance(x, str)]


@pytest.fixture(scope="module")
def ref(spiece_path):
    from albertkit import AlbertTokenizer

    return AlbertTokenizer(spiece_path)


@pytest.fixture(scope="module")
def hf5_folder(spiece_path, tmp_path_factory):
    """A tokenizer folder as transformers 5 saves it: tokenizer.json + tokenizer_config.json only."""
    from transformers import AlbertTokenizer as HFAlbertTokenizer

    src = tmp_path_factory.mktemp("spiece")
    shutil.copy(spiece_path, src / "spiece.model")
    out = tmp_path_factory.mktemp("hf5")
    HFAlbertTokenizer.from_pretrained(str(src)).save_pretrained(str(out))
    assert sorted(p.name for p in out.iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    return out


@pytest.fixture(scope="module")
def hub_folder(spiece_path, tmp_path_factory):
    """The hub's layout: the tokenizer.json transformers' AlbertConverter makes, without spiece.model."""
    out = tmp_path_factory.mktemp("hub")
    D.hf_fast_reference(spiece_path, out)
    (out / "spiece.model").unlink()
    return out


def _proto(data: bytes):
    proto = pb2.ModelProto()
    proto.ParseFromString(data)
    return proto


def test_rebuilt_model_has_the_original_pieces_scores_and_types(ref, hf5_folder):
    from albertkit import AlbertTokenizer

    tok = AlbertTokenizer.from_pretrained(hf5_folder)
    a, b = _proto(ref.sp.serialized_model_proto()), _proto(tok.sp.serialized_model_proto())
    assert [(p.piece, p.score, p.type) for p in a.pieces] == [(p.piece, p.score, p.type) for p in b.pieces]
    assert a.normalizer_spec.precompiled_charsmap == b.normalizer_spec.precompiled_charsmap
    assert tok.do_lower_case and not tok.keep_accents


def test_hub_layout_scores_are_shifted_back(ref, hub_folder):
    from albertkit import AlbertTokenizer

    tok = AlbertTokenizer.from_pretrained(hub_folder)
    raw = json.loads((hub_folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    shifted = [i for i, (p, s) in enumerate(raw) if s < -60]
    assert len(shifted) > 100  # the converter's -100 on "▁2010," and the like
    a, b = _proto(ref.sp.serialized_model_proto()), _proto(tok.sp.serialized_model_proto())
    assert [(p.piece, p.score) for p in a.pieces] == [(p.piece, p.score) for p in b.pieces]


@pytest.mark.parametrize("which", ["hf5_folder", "hub_folder"])
def test_ids_identical_to_spiece_model(request, ref, shared_data, which):
    from albertkit import AlbertTokenizer

    tok = AlbertTokenizer.from_pretrained(request.getfixturevalue(which))
    texts = _texts(shared_data, full=False)
    assert len(texts) > 5000
    texts = texts if which == "hf5_folder" else texts[::3]  # the hub layout differs in scores only
    assert tok.encode_batch(texts) == ref.encode_batch(texts)
    pairs = [x for x in D.HARD_CASES if isinstance(x, tuple)]
    for a, b in pairs:
        assert tok(a, b)["input_ids"] == ref(a, b)["input_ids"]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["hf5_folder", "hub_folder"])
def test_ids_identical_to_spiece_model_all_texts(request, ref, shared_data, which):
    from albertkit import AlbertTokenizer

    tok = AlbertTokenizer.from_pretrained(request.getfixturevalue(which))
    texts = _texts(shared_data, full=True)
    assert len(texts) == 118292
    assert tok.encode_batch(texts) == ref.encode_batch(texts)


def _saved_and_loaded_in_transformers5(ref, folder):
    from transformers import AlbertTokenizer as HFAlbertTokenizer

    ref.save_pretrained(folder)
    (folder / "spiece.model").unlink()  # so transformers 5 can only read our tokenizer.json
    return HFAlbertTokenizer.from_pretrained(str(folder))


def test_saved_tokenizer_json_loads_in_transformers5(ref, shared_data, tmp_path, hub_folder):
    hf = _saved_and_loaded_in_transformers5(ref, tmp_path)
    ours = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    theirs = json.loads((hub_folder / "tokenizer.json").read_text(encoding="utf-8"))
    # the file transformers' AlbertConverter writes (we list <unk> among the added tokens too)
    assert {k: v for k, v in ours.items() if k != "added_tokens"} == {k: v for k, v in theirs.items() if k != "added_tokens"}
    texts = _texts(shared_data, full=False)[::6]
    got = hf(texts)["input_ids"]
    assert got == [ref.build_inputs_with_special_tokens(ids) for ids in ref.encode_batch(texts)]
    assert hf("The [MASK] is here.")["input_ids"] == ref("The [MASK] is here.")["input_ids"]


@pytest.mark.slow
def test_saved_tokenizer_json_in_transformers5_all_texts(ref, shared_data, tmp_path):
    """transformers 5 on our tokenizer.json vs SentencePiece: 4 of 118,292 texts differ, all the same
    SQuAD context, where the fast Unigram breaks a tie differently ("2.666": '6' '66' vs '66' '6');
    transformers 5 on the hub's own file gives the same 4."""
    hf = _saved_and_loaded_in_transformers5(ref, tmp_path)
    texts = _texts(shared_data, full=True)
    got = hf(texts)["input_ids"]
    want = [ref.build_inputs_with_special_tokens(ids) for ids in ref.encode_batch(texts)]
    bad = {texts[i] for i in range(len(texts)) if got[i] != want[i]}
    assert len(bad) == 1 and "2.666 million" in bad.pop()


def test_round_trip_through_albertkit_save(ref, tmp_path, shared_data):
    from albertkit import AlbertTokenizer

    ref.save_pretrained(tmp_path)
    (tmp_path / "spiece.model").unlink()
    tok = AlbertTokenizer.from_pretrained(tmp_path)
    texts = _texts(shared_data, full=False)[::10]
    assert tok.encode_batch(texts) == ref.encode_batch(texts)


def test_case_and_accents_follow_the_normalizer(spiece_path, tmp_path):
    """A cased, accent-keeping tokenizer saved by transformers 5; its tokenizer_config.json's keys
    removed, the normaliser alone says how to treat case and accents."""
    from transformers import AlbertTokenizer as HFAlbertTokenizer

    from albertkit import AlbertTokenizer

    (tmp_path / "sp").mkdir()
    shutil.copy(spiece_path, tmp_path / "sp" / "spiece.model")
    HFAlbertTokenizer.from_pretrained(str(tmp_path / "sp"), do_lower_case=False, keep_accents=True).save_pretrained(str(tmp_path / "hf"))
    cfg_path = tmp_path / "hf" / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    assert cfg.pop("do_lower_case") is False and cfg.pop("keep_accents") is True
    cfg_path.write_text(json.dumps(cfg))
    tok = AlbertTokenizer.from_pretrained(tmp_path / "hf")
    assert (tok.do_lower_case, tok.keep_accents) == (False, True)
    ref = AlbertTokenizer(spiece_path, do_lower_case=False, keep_accents=True)
    texts = [x for x in D.HARD_CASES if isinstance(x, str)]
    assert tok.encode_batch(texts) == ref.encode_batch(texts)


def test_errors_name_the_file_and_field(tmp_path):
    from albertkit import AlbertTokenizer
    from albertkit.tokenization import TokenizerError

    with pytest.raises(TokenizerError, match="neither spiece.model nor tokenizer.json"):
        AlbertTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": {}}}))
    with pytest.raises(TokenizerError, match=r"tokenizer.json: model.type is 'BPE'"):
        AlbertTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", "x"]]},
                                                         "pre_tokenizer": {"type": "Metaspace"}}))
    with pytest.raises(TokenizerError, match=r"model.vocab\[1\] must be \[piece, score\]"):
        AlbertTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="tokenizer.json: cannot read"):
        AlbertTokenizer.from_pretrained(tmp_path)
