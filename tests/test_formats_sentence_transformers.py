"""sentence-transformers folders in and out of the ``sentence-embedding`` pipeline.

The folders are made by sentence-transformers itself (``SentenceTransformer(modules=...).save``)
around a tiny random ALBERT made by transformers, with the real albert-base-v2 tokenizer; the
legacy layout (``0_Transformer/``, ``sentence_albert_config.json``, ``pooling_mode_*_tokens``,
``sentence_transformers.models.*`` types) is that folder's files rewritten to the old schema, and
sentence-transformers' own vectors from it are the reference too.
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import require_reference

import tokenization_parity_data as D

require_reference("transformers")
st = require_reference("sentence_transformers")
torch = require_reference("torch")

ATOL = 1e-5


@pytest.fixture(scope="module")
def hf_albert(spiece_path, tmp_path_factory):
    """A tiny random ALBERT saved by transformers (model + tokenizer)."""
    from transformers import AlbertConfig, AlbertModel, AlbertTokenizer

    torch.manual_seed(0)
    cfg = AlbertConfig(vocab_size=30000, embedding_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=32, max_position_embeddings=64, num_hidden_groups=1)
    out = tmp_path_factory.mktemp("hf_albert")
    AlbertModel(cfg).save_pretrained(str(out))
    # the tokenizer files of the deployed ALBERT sentence-transformers models (and of the hub's
    # albert-base-v2): spiece.model + the tokenizer.json of transformers' AlbertConverter. (A
    # tokenizer.json that transformers 5 converts itself lists the user symbols as added tokens, which
    # changes its ids: "film ." loses the "▁" piece; see tokenization_parity_data.hf_fast_reference.)
    D.hf_fast_reference(spiece_path, out).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def texts(shared_data):
    rows = (shared_data / "glue" / "SST-2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:41]
    out = [r.split("\t")[0] for r in rows]
    # mixed case (do_lower_case), and longer than every max_seq_length used here (truncation)
    return out + ["The Quick Brown Fox In CAPITALS", "word " * 80, "Éclair, naïve CAFÉ " * 12]


def _st_folder(hf_albert, folder, pooling, normalize, max_seq_length):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    t = Transformer(str(hf_albert), max_seq_length=max_seq_length)
    modules = [t, Pooling(t.get_embedding_dimension(), pooling_mode=pooling)]
    if normalize:
        modules.append(Normalize())
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    return folder


def _st_encode(folder, texts):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    return model.encode(texts, convert_to_tensor=True, batch_size=16).float()


def _ours(folder, texts, **kw):
    from albertkit import pipeline

    pipe = pipeline("sentence-embedding", model=folder, **kw)
    return pipe, pipe.encode(texts)


@pytest.mark.parametrize(
    "pooling,normalize,max_seq_length",
    [("cls", True, 24), ("mean", False, 32), (("cls", "mean"), True, 24),
     # the rarer modes: pytest -m slow tests/test_formats_sentence_transformers.py
     pytest.param("max", False, 20, marks=pytest.mark.slow),
     pytest.param("mean_sqrt_len_tokens", True, 40, marks=pytest.mark.slow),
     pytest.param("weightedmean", False, 24, marks=pytest.mark.slow),
     pytest.param("lasttoken", False, 24, marks=pytest.mark.slow)],
    ids=str,
)
def test_same_vectors_as_sentence_transformers(hf_albert, texts, tmp_path, pooling, normalize, max_seq_length):
    folder = _st_folder(hf_albert, tmp_path / "st", pooling, normalize, max_seq_length)
    pipe, ours = _ours(folder, texts)
    theirs = _st_encode(folder, texts)
    assert pipe.max_length == max_seq_length
    assert pipe.defaults["pooling"] == (pooling if isinstance(pooling, str) else "+".join(pooling))
    assert pipe.defaults["normalize"] is normalize
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def _make_legacy(folder, legacy):
    """Rewrite a sentence-transformers 6 folder into the layout of models saved by v2 (2021)."""
    (legacy / "0_Transformer").mkdir(parents=True)
    for f in folder.iterdir():
        if f.is_file() and f.name not in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "README.md"):
            shutil.copy(f, legacy / "0_Transformer" / f.name)
    # tokenizer_config.json's model_max_length would otherwise set the length; old folders had 512
    tc = json.loads((legacy / "0_Transformer" / "tokenizer_config.json").read_text())
    tc["model_max_length"] = 512
    (legacy / "0_Transformer" / "tokenizer_config.json").write_text(json.dumps(tc))
    (legacy / "0_Transformer" / "sentence_albert_config.json").write_text(json.dumps({"max_seq_length": 20, "do_lower_case": True}))
    (legacy / "1_Pooling").mkdir()
    (legacy / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 16, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    (legacy / "2_Normalize").mkdir()
    (legacy / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    return legacy


def test_legacy_layout(hf_albert, texts, tmp_path):
    folder = _st_folder(hf_albert, tmp_path / "st", "cls", False, 64)
    legacy = _make_legacy(folder, tmp_path / "legacy")
    theirs = _st_encode(legacy, texts)
    pipe, ours = _ours(legacy, texts)
    spec = pipe.sentence_transformers
    assert (spec.pooling, spec.normalize, spec.max_seq_length, spec.do_lower_case) == ("mean", True, 20, True)
    assert spec.transformer_path == legacy / "0_Transformer"
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def test_explicit_options_override_the_folder(hf_albert, texts, tmp_path):
    folder = _st_folder(hf_albert, tmp_path / "st", "cls", True, 24)
    pipe, _ = _ours(folder, texts[:2], pooling="mean", normalize=False)
    assert pipe.defaults == {"pooling": "mean", "normalize": False}


@pytest.mark.parametrize("pooling,normalize", [("mean", True), ("max+mean", False), ("mean+cls", False)], ids=str)
def test_save_pretrained_loads_in_sentence_transformers(hf_albert, texts, tmp_path, pooling, normalize):
    from albertkit import pipeline

    pipe = pipeline("sentence-embedding", model=hf_albert, pooling=pooling, normalize=normalize)
    pipe.max_length = 28
    pipe.save_pretrained(tmp_path / "out")
    theirs = _st_encode(tmp_path / "out", texts)
    # ours, reloaded from what we wrote, and sentence-transformers on it
    again, ours = _ours(tmp_path / "out", texts)
    assert again.max_length == 28
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)
    assert theirs.shape[1] == 16 * len(pooling.split("+"))


@pytest.mark.slow  # pytest -m slow tests/test_formats_sentence_transformers.py
def test_round_trip_of_a_sentence_transformers_folder(hf_albert, texts, tmp_path):
    folder = _st_folder(hf_albert, tmp_path / "st", "mean", True, 32)
    pipe, ours = _ours(folder, texts)
    pipe.save_pretrained(tmp_path / "copy")
    torch.testing.assert_close(_st_encode(tmp_path / "copy", texts), _st_encode(folder, texts), atol=ATOL, rtol=0)


def test_unsupported_modules_are_named(hf_albert, tmp_path):
    from albertkit import pipeline

    folder = _st_folder(hf_albert, tmp_path / "st", "mean", False, 24)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match=r"modules.json: module '2' is a sentence_transformers.models.Dense"):
        pipeline("sentence-embedding", model=folder)
    (folder / "modules.json").write_text(json.dumps(modules[:2]))
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "median"}))
    with pytest.raises(ValueError, match=r"1_Pooling/config.json: pooling mode 'median'"):
        pipeline("sentence-embedding", model=folder)


@pytest.mark.slow
def test_base_width_same_vectors(spiece_path, texts, tmp_path):
    """albert-base-v2's shape (E 128, H 768, 12 layers, random weights): pytest -m slow."""
    from transformers import AlbertConfig, AlbertModel

    torch.manual_seed(1)
    cfg = AlbertConfig(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                       intermediate_size=3072, hidden_act="gelu_new")
    hf = tmp_path / "hf"
    AlbertModel(cfg).save_pretrained(str(hf))
    D.hf_fast_reference(spiece_path, hf).save_pretrained(str(hf))
    folder = _st_folder(hf, tmp_path / "st", "mean", True, 128)
    _, ours = _ours(folder, texts)
    torch.testing.assert_close(ours, _st_encode(folder, texts), atol=ATOL, rtol=0)


@pytest.mark.slow  # pytest -m slow tests/test_formats_sentence_transformers.py
def test_cli_embed_takes_the_folders_recipe(hf_albert, texts, tmp_path, capsys):
    from albertkit.cli import main

    folder = _st_folder(hf_albert, tmp_path / "st", "cls", True, 24)
    assert main(["embed", *texts[:3], "--model", str(folder), "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    torch.testing.assert_close(torch.tensor(rows), _st_encode(folder, texts[:3]), atol=ATOL, rtol=0)
