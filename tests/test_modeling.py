"""Parity of albertkit's ALBERT with Hugging Face transformers (the reference), both directions."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

import albertkit.modeling as am
from albertkit import AlbertConfig, ConfigError
from albertkit.checkpoint import CheckpointError
from conftest import require_reference

transformers = require_reference("transformers")
transformers.logging.set_verbosity_error()

ATOL = 1e-5
CLASSES = [
    "AlbertModel",
    "AlbertForPreTraining",
    "AlbertForMaskedLM",
    "AlbertForSequenceClassification",
    "AlbertForTokenClassification",
    "AlbertForQuestionAnswering",
    "AlbertForMultipleChoice",
]


def tiny(**kw) -> AlbertConfig:
    return AlbertConfig.from_name("tiny", **kw)


def hf_config(cfg: AlbertConfig, eager: bool = False):
    hc = transformers.AlbertConfig(**cfg.to_dict())
    if eager:
        hc._attn_implementation = "eager"
    return hc


def batch(cfg: AlbertConfig, seed: int = 0, B: int = 3, T: int = 9, choices: int | None = None) -> dict:
    g = torch.Generator().manual_seed(seed)
    shape = (B, choices, T) if choices else (B, T)
    ids = torch.randint(5, cfg.vocab_size, shape, generator=g)
    mask = torch.ones(shape, dtype=torch.long)
    flat = mask.view(-1, T)
    flat[1, T - 3 :] = 0  # padding in two rows
    flat[2, 4:] = 0
    ids = ids.masked_fill(mask == 0, cfg.pad_token_id)
    tt = torch.zeros(shape, dtype=torch.long)
    tt[..., 5:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}


def labels_for(name: str, cfg: AlbertConfig, b: dict) -> dict:
    ids = b["input_ids"]
    B = ids.shape[0]
    g = torch.Generator().manual_seed(1)
    if name == "AlbertForPreTraining":
        lab = torch.full_like(ids, -100)
        lab[:, 2] = ids[:, 2]
        return {"labels": lab, "sentence_order_label": torch.randint(0, 2, (B,), generator=g)}
    if name == "AlbertForMaskedLM":
        lab = torch.full_like(ids, -100)
        lab[:, 1:3] = ids[:, 1:3]
        return {"labels": lab}
    if name == "AlbertForSequenceClassification":
        return {"labels": torch.randint(0, cfg.num_labels, (B,), generator=g)}
    if name == "AlbertForTokenClassification":
        lab = torch.randint(0, cfg.num_labels, ids.shape, generator=g)
        return {"labels": lab.masked_fill(b["attention_mask"] == 0, -100)}
    if name == "AlbertForQuestionAnswering":
        return {"start_positions": torch.tensor([1, 2, 30]), "end_positions": torch.tensor([3, 2, 4])}
    if name == "AlbertForMultipleChoice":
        return {"labels": torch.randint(0, ids.shape[1], (B,), generator=g)}
    return {}


OUTPUT_FIELDS = ("loss", "logits", "prediction_logits", "sop_logits", "start_logits", "end_logits", "last_hidden_state", "pooler_output")


def assert_outputs_close(a, b, atol: float = ATOL) -> None:
    compared = 0
    for field in OUTPUT_FIELDS:
        x, y = getattr(a, field, None), getattr(b, field, None)
        if x is None or y is None:
            continue
        torch.testing.assert_close(x, y, atol=atol, rtol=1e-4, msg=lambda m: f"{field}: {m}")
        compared += 1
    assert compared > 0
    if getattr(a, "hidden_states", None) is not None:
        assert len(a.hidden_states) == len(b.hidden_states)
        for x, y in zip(a.hidden_states, b.hidden_states):
            torch.testing.assert_close(x, y, atol=atol, rtol=1e-4)
    if getattr(a, "attentions", None):
        assert len(a.attentions) == len(b.attentions)
        for x, y in zip(a.attentions, b.attentions):
            torch.testing.assert_close(x, y, atol=atol, rtol=1e-4)


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("groups", [(1, 1), (2, 2)], ids=["G1K1", "G2K2"])
def test_hf_checkpoint_loads_and_matches(name: str, groups: tuple[int, int], tmp_path: Path) -> None:
    G, K = groups
    # num_labels 3 exercises the heads; HF assumes 2 for the SOP loss and the QA split.
    labels = 2 if name in ("AlbertForPreTraining", "AlbertForQuestionAnswering") else 3
    cfg = tiny(num_hidden_layers=4, num_hidden_groups=G, inner_group_num=K, num_labels=labels, hidden_act="gelu_new")
    torch.manual_seed(0)
    hf = getattr(transformers, name)(hf_config(cfg, eager=True)).eval()
    hf.save_pretrained(tmp_path)
    ours = getattr(am, name).from_pretrained(tmp_path)
    assert not ours.training
    b = batch(cfg, choices=4 if name == "AlbertForMultipleChoice" else None)
    b.update(labels_for(name, cfg, b))
    with torch.no_grad():
        ref = hf(**b, output_hidden_states=True, output_attentions=True)
        out = ours(**b, output_hidden_states=True, output_attentions=True)
    assert_outputs_close(ref, out)


@pytest.mark.parametrize("name", CLASSES)
def test_albertkit_checkpoint_loads_in_transformers(name: str, tmp_path: Path) -> None:
    cfg = tiny(num_labels=2, hidden_act="gelu")
    torch.manual_seed(1)
    ours = getattr(am, name)(cfg).eval()
    ours.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["architectures"] == [name] and saved["model_type"] == "albert"
    hf = getattr(transformers, name).from_pretrained(tmp_path).eval()
    b = batch(cfg, seed=3, choices=2 if name == "AlbertForMultipleChoice" else None)
    b.update(labels_for(name, cfg, b))
    with torch.no_grad():
        assert_outputs_close(hf(**b), ours(**b))


def test_pretraining_gradients_match_transformers(tmp_path: Path) -> None:
    cfg = tiny(num_hidden_layers=3, classifier_dropout_prob=0.0)  # no randomness in train mode
    torch.manual_seed(2)
    hf = transformers.AlbertForPreTraining(hf_config(cfg)).train()
    hf.save_pretrained(tmp_path)
    ours = am.AlbertForPreTraining.from_pretrained(tmp_path).train()
    b = batch(cfg)
    b.update(labels_for("AlbertForPreTraining", cfg, b))
    hf(**b).loss.backward()
    ours(**b).loss.backward()
    hf_grads = dict(hf.named_parameters())
    checked = 0
    for key, p in ours.named_parameters():
        if key.startswith("predictions.decoder"):
            continue  # tied: the gradient lands on the word embeddings / predictions.bias
        torch.testing.assert_close(p.grad, hf_grads[key].grad, atol=1e-6, rtol=1e-4, msg=lambda m: f"{key}: {m}")
        checked += 1
    assert checked == len(hf_grads) - sum(1 for k in hf_grads if k.startswith("predictions.decoder"))


def test_gradient_checkpointing_gives_same_gradients() -> None:
    cfg = tiny(num_hidden_layers=3, classifier_dropout_prob=0.0)
    torch.manual_seed(3)
    model = am.AlbertForPreTraining(cfg).train()
    b = batch(cfg)
    b.update(labels_for("AlbertForPreTraining", cfg, b))

    def grads() -> dict[str, torch.Tensor]:
        model.zero_grad()
        model(**b).loss.backward()
        return {k: p.grad.clone() for k, p in model.named_parameters()}

    plain = grads()
    model.gradient_checkpointing_enable()
    ckpt = grads()
    for k in plain:
        torch.testing.assert_close(plain[k], ckpt[k], atol=1e-7, rtol=1e-6)


def test_masked_positions_equal_full_logits() -> None:
    cfg = tiny()
    torch.manual_seed(4)
    model = am.AlbertForMaskedLM(cfg).eval()
    b = batch(cfg)
    positions = torch.tensor([[1, 3], [0, 2], [2, 2]])
    with torch.no_grad():
        full = model(**b).logits
        part = model(**b, masked_lm_positions=positions).logits
    assert part.shape == (3, 2, cfg.vocab_size)
    torch.testing.assert_close(part, full.gather(1, positions[..., None].expand(-1, -1, cfg.vocab_size)))
    labels = torch.tensor([[7, -100], [8, 9], [-100, 10]])
    full_labels = torch.full(b["input_ids"].shape, -100)
    full_labels[0, 1], full_labels[1, 0], full_labels[1, 2], full_labels[2, 2] = 7, 8, 9, 10
    with torch.no_grad():
        a = model(**b, masked_lm_positions=positions, masked_lm_labels=labels).loss
        c = model(**b, labels=full_labels).loss
    torch.testing.assert_close(a, c)


@pytest.mark.parametrize(
    "name,count", [("albert-base-v2", 11_683_584), ("albert-large-v2", 17_683_968), ("albert-xlarge-v1", 58_724_864), ("albert-xxlarge-v2", 222_595_584)]
)
def test_parameter_counts_match_reference(name: str, count: int) -> None:
    with torch.device("meta"):
        model = am.AlbertModel(AlbertConfig.from_name(name))
    assert model.num_parameters() == count


def test_masked_lm_parameter_count_ties_decoder() -> None:
    with torch.device("meta"):
        model = am.AlbertForMaskedLM(AlbertConfig.from_name("albert-base-v2"))
    assert model.num_parameters() == 11_221_680
    assert model.predictions.decoder.weight is model.albert.embeddings.word_embeddings.weight


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"hidden_size": 30, "num_attention_heads": 4}, "hidden_size"),
        ({"num_hidden_layers": 3, "num_hidden_groups": 2}, "num_hidden_layers"),
        ({"hidden_act": "gelu_wrong"}, "hidden_act"),
        ({"embedding_size": -1}, "embedding_size"),
        ({"hidden_dropout_prob": 1.5}, "hidden_dropout_prob"),
    ],
)
def test_invalid_config_names_field(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        tiny(**overrides)


def test_config_round_trip_keeps_unknown_keys(tmp_path: Path) -> None:
    data = tiny().to_dict()
    data["my_custom_key"] = {"a": 1}
    data["id2label"] = {"0": "neg", "1": "pos"}
    (tmp_path / "config.json").write_text(json.dumps(data))
    cfg = AlbertConfig.from_pretrained(tmp_path)
    assert cfg.id2label == {0: "neg", 1: "pos"} and cfg.label2id == {"neg": 0, "pos": 1} and cfg.num_labels == 2
    cfg.save_pretrained(tmp_path / "out")
    again = json.loads((tmp_path / "out" / "config.json").read_text())
    assert again["my_custom_key"] == {"a": 1}
    assert again["id2label"] == {"0": "neg", "1": "pos"}


def test_hf_config_json_loads_for_every_preset(tmp_path: Path) -> None:
    for name in ("albert-base-v1", "albert-xxlarge-v2"):
        hc = transformers.AlbertConfig(**AlbertConfig.from_name(name).to_dict())
        hc.save_pretrained(tmp_path / name)
        cfg = AlbertConfig.from_pretrained(tmp_path / name)
        assert cfg.hidden_size == hc.hidden_size and cfg.hidden_act == hc.hidden_act


def test_base_checkpoint_into_task_model_reports_new_head(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = tiny()
    base = am.AlbertModel(cfg)
    base.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING):
        model = am.AlbertForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    assert model.classifier.out_features == 5
    assert set(model.loading_info["new_weights"]) == {"classifier.weight", "classifier.bias"}
    assert "classifier.weight" in caplog.text
    torch.testing.assert_close(model.albert.embeddings.word_embeddings.weight, base.embeddings.word_embeddings.weight)


def test_task_checkpoint_into_base_model_drops_heads(tmp_path: Path) -> None:
    cfg = tiny()
    mlm = am.AlbertForPreTraining(cfg)
    mlm.save_pretrained(tmp_path)
    base = am.AlbertModel.from_pretrained(tmp_path)
    assert any(k.startswith("predictions.") for k in base.loading_info["dropped_weights"])
    torch.testing.assert_close(base.pooler.weight, mlm.albert.pooler.weight)


def test_pretraining_checkpoint_into_classifier_keeps_backbone(tmp_path: Path) -> None:
    pre = am.AlbertForPreTraining(tiny())
    pre.save_pretrained(tmp_path)
    clf = am.AlbertForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    dropped = set(clf.loading_info["dropped_weights"])
    assert {"predictions.bias", "sop_classifier.classifier.weight"} <= dropped
    assert set(clf.loading_info["new_weights"]) == {"classifier.weight", "classifier.bias"}
    torch.testing.assert_close(clf.albert.pooler.weight, pre.albert.pooler.weight)


def test_pooler_dropped_for_classes_without_one(tmp_path: Path) -> None:
    base = am.AlbertModel(tiny())
    base.save_pretrained(tmp_path)
    qa = am.AlbertForQuestionAnswering.from_pretrained(tmp_path)
    assert {"pooler.weight", "pooler.bias"} <= set(qa.loading_info["dropped_weights"])
    assert qa.albert.pooler is None


def test_unexpected_and_missing_weights_raise_listing_keys(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    cfg = tiny()
    am.AlbertModel(cfg).save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state["encoder.bogus.weight"] = torch.zeros(2)
    del state["embeddings.LayerNorm.bias"]
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"missing 1 .*embeddings.LayerNorm.bias.*unexpected 1 .*encoder.bogus.weight"):
        am.AlbertModel.from_pretrained(tmp_path)


def test_shape_mismatch_raises(tmp_path: Path) -> None:
    am.AlbertModel(tiny()).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="shape"):
        am.AlbertModel.from_pretrained(tmp_path, config=tiny(embedding_size=12))


def test_corrupt_weights_file_raises(tmp_path: Path) -> None:
    am.AlbertModel(tiny()).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        am.AlbertModel.from_pretrained(tmp_path)


def test_pytorch_model_bin_and_legacy_position_ids(tmp_path: Path) -> None:
    cfg = tiny()
    model = am.AlbertForMaskedLM(cfg).eval()
    state = {k: v for k, v in model.state_dict().items()}
    state["albert.embeddings.position_ids"] = torch.arange(cfg.max_position_embeddings)[None]
    cfg.save_pretrained(tmp_path)
    torch.save(state, tmp_path / "pytorch_model.bin")
    loaded = am.AlbertForMaskedLM.from_pretrained(tmp_path)
    b = batch(cfg)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**b).logits, model(**b).logits)


def test_save_is_atomic_and_keeps_other_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny()
    first = am.AlbertModel(cfg)
    first.save_pretrained(tmp_path)
    (tmp_path / "spiece.model").write_bytes(b"tokenizer")
    import safetensors.torch

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        am.AlbertModel(cfg).save_pretrained(tmp_path)
    monkeypatch.undo()
    reloaded = am.AlbertModel.from_pretrained(tmp_path)  # the old, complete checkpoint
    torch.testing.assert_close(reloaded.pooler.weight, first.pooler.weight)
    assert not [p for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}.")]
    am.AlbertModel(cfg).save_pretrained(tmp_path)
    assert (tmp_path / "spiece.model").read_bytes() == b"tokenizer"


@pytest.mark.parametrize("dtype", [torch.bfloat16, "float16"])
def test_dtype_on_load(dtype, tmp_path: Path) -> None:
    cfg = tiny()
    model = am.AlbertModel(cfg).eval()
    model.save_pretrained(tmp_path)
    low = am.AlbertModel.from_pretrained(tmp_path, dtype=dtype)
    expected = torch.bfloat16 if dtype is torch.bfloat16 else torch.float16
    assert low.dtype == expected
    b = batch(cfg)
    with torch.no_grad():
        ref = model(**b).last_hidden_state
        got = low(**b).last_hidden_state.float()
    assert (ref - got).abs().max() < 0.1


def test_offline_hub_name_fails_fast_with_clear_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import time

    from albertkit import ModelNotFoundError

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    for offline in ("1", "0"):
        monkeypatch.setenv("HF_HUB_OFFLINE", offline)
        start = time.monotonic()
        with pytest.raises(ModelNotFoundError, match="albert-large-v2"):
            am.AlbertModel.from_pretrained("albert-large-v2")
        assert time.monotonic() - start < 3.0


def test_forward_rejects_bad_input() -> None:
    model = am.AlbertModel(tiny())
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="exactly one"):
        model()
    with pytest.raises(TypeError, match="bogus"):
        model(torch.zeros(1, 3, dtype=torch.long), bogus=1)


def test_saved_files_get_ordinary_permissions(tmp_path: Path) -> None:
    import os
    import stat

    mask = os.umask(0o022)
    try:
        am.AlbertModel(tiny()).save_pretrained(tmp_path / "m")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o755
    for name in ("config.json", "model.safetensors"):
        assert stat.S_IMODE((tmp_path / "m" / name).stat().st_mode) == 0o644
