"""The one loading path: a name resolved once, the head policy in one place, one task table.

Tiny configs and the shipped model only; each test well under a second.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

import albertkit.checkpoint as checkpoint
import albertkit.modeling as am
from albertkit import AlbertConfig, CheckpointError
from albertkit.layout import HEAD_PREFIXES_ALL, MODEL_CLASSES, TASK_TO_CLASS, TASKS, adapt_keys

SHIPPED = Path(am.__file__).parent / "models" / "albert-mini-en"


def tiny(**kw) -> AlbertConfig:
    return AlbertConfig.from_name("tiny", **kw)


def _count(monkeypatch: pytest.MonkeyPatch, module, name: str) -> list[object]:
    calls: list[object] = []
    original = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args[0] if args else None)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_pipeline_resolves_its_model_once_and_reads_the_weights_once(monkeypatch):
    from albertkit import pipeline
    from albertkit.tokenization import AlbertTokenizer

    config_lookups = _count(monkeypatch, checkpoint, "resolve_file")
    weight_lookups = _count(monkeypatch, checkpoint, "resolve_first")
    reads = _count(monkeypatch, checkpoint, "load_state_dict_file")
    peeks = _count(monkeypatch, checkpoint, "checkpoint_keys")
    tokenizer_sources: list[str] = []
    load_tokenizer = AlbertTokenizer.from_pretrained.__func__
    monkeypatch.setattr(
        AlbertTokenizer, "from_pretrained", classmethod(lambda cls, src, **kw: tokenizer_sources.append(src) or load_tokenizer(cls, src, **kw))
    )
    unmasker = pipeline("fill-mask", model="albert-mini-en")
    assert (len(config_lookups), len(weight_lookups), len(reads), len(peeks)) == (1, 1, 1, 0)
    assert tokenizer_sources == [str(SHIPPED)]  # the folder the weights were found in: no second lookup
    assert unmasker.model_name == "albert-mini-en"
    assert unmasker("Paris is the [MASK] of France.", top_k=1)[0]["token_str"]


def test_require_head_refuses_a_random_head_and_fine_tuning_still_gets_one(tmp_path):
    am.AlbertModel(tiny()).save_pretrained(tmp_path)  # a backbone checkpoint: no head at all
    model = am.AlbertForSequenceClassification.from_pretrained(tmp_path, num_labels=3)  # fine-tuning starts here
    assert model.loading_info["new_weights"] == ["classifier.bias", "classifier.weight"]
    with pytest.raises(CheckpointError, match=r"no trained AlbertForSequenceClassification head .*classifying"):
        am.AlbertForSequenceClassification.from_pretrained(tmp_path, require_head="classifying")
    with pytest.raises(CheckpointError, match="no trained AlbertForMaskedLM head"):
        am.AlbertForMaskedLM.from_pretrained(tmp_path, require_head=True)
    am.AlbertModel.from_pretrained(tmp_path, require_head=True)  # the backbone needs no head


def test_a_pipeline_refuses_a_checkpoint_without_its_head(tmp_path, spiece_path):
    import shutil

    from albertkit import pipeline

    am.AlbertModel(tiny(vocab_size=30000)).save_pretrained(tmp_path)
    shutil.copy(spiece_path, tmp_path / "spiece.model")
    with pytest.raises(CheckpointError, match="running the question-answering pipeline"):
        pipeline("question-answering", model=str(tmp_path))
    assert pipeline("feature-extraction", model=str(tmp_path))("a text")  # the backbone pipelines need no head


def test_resolved_checkpoint_loads_and_points_to_its_tokenizer():
    ckpt = checkpoint.resolve_checkpoint("albert-mini-en")
    assert checkpoint.resolve_checkpoint(ckpt) is ckpt
    assert ckpt.folder == SHIPPED and ckpt.tokenizer_source == str(SHIPPED)
    assert set(HEAD_PREFIXES_ALL[:2]) <= {k.split(".")[0] + "." for k in ckpt.keys}
    model = am.AlbertForMaskedLM.from_pretrained(ckpt, dtype="bf16")
    assert model.dtype == torch.bfloat16 and model.config.hidden_size == ckpt.config.hidden_size


def test_checkpoint_tells_the_class_nothing_but_its_attributes():
    # The key policy reads only what a class declares, so a look-alike (the Keras classes) gets the same result.
    state = {"albert.embeddings.x": 1, "albert.pooler.weight": 2, "predictions.bias": 3, "sop_classifier.classifier.weight": 4}
    kept, dropped = adapt_keys(state, prefix="albert.", is_base=False, has_pooler=False, head_prefixes=("predictions.",))
    assert kept == {"albert.embeddings.x": 1, "predictions.bias": 3}
    assert dropped == ["albert.pooler.weight", "sop_classifier.classifier.weight"]
    kept, dropped = adapt_keys(state, prefix="albert.", is_base=True, has_pooler=True, head_prefixes=())
    assert kept == {"embeddings.x": 1, "pooler.weight": 2} and len(dropped) == 2


def test_per_class_facts_come_from_the_one_table():
    for name, facts in MODEL_CLASSES.items():
        cls = am.MODEL_CLASSES[name]
        assert (cls.head_prefixes, cls.export_inputs, cls.export_outputs) == (
            facts.head_prefixes,
            facts.export_inputs,
            facts.export_outputs,
        )
        fields = set(cls.output_class.__dataclass_fields__)
        assert set(facts.export_outputs) <= fields, name
    assert set(HEAD_PREFIXES_ALL) == {p for f in MODEL_CLASSES.values() for p in f.head_prefixes}

    class MyMaskedLM(am.AlbertForMaskedLM):  # a user's subclass keeps its parent's facts
        pass

    assert MyMaskedLM.head_prefixes == ("predictions.",) and MyMaskedLM.output_class is am.MaskedLMOutput


def test_one_task_table_drives_pipelines_and_export():
    from albertkit.export_commands import TASKS as EXPORT_CHOICES
    from albertkit.pipelines import TASKS as PIPELINES

    assert set(PIPELINES) == {name for name, t in TASKS.items() if t.pipeline}
    assert set(EXPORT_CHOICES) == set(TASK_TO_CLASS) == {name for name, t in TASKS.items() if t.export}
    for name, task in TASKS.items():
        assert task.model_class in am.MODEL_CLASSES
        if task.pipeline:
            module, cls = task.pipeline.split(":")
            pipe = getattr(importlib.import_module(module), cls)
            assert pipe.task == name  # the pipeline's class is read from this table by its task name


def test_quantize_on_load_is_the_fast_layers_int8(tmp_path):
    from albertkit.fast import quantize_int8

    am.AlbertForMaskedLM(tiny()).save_pretrained(tmp_path)
    model = am.AlbertForMaskedLM.from_pretrained(tmp_path, quantize="int8")
    same = quantize_int8(am.AlbertForMaskedLM.from_pretrained(tmp_path))
    ids = torch.tensor([[2, 10, 4, 11, 3]])
    assert torch.equal(model(ids).logits, same(ids).logits)
    assert isinstance(model.albert.encoder.albert_layer_groups[0].albert_layers[0].ffn, torch.ao.nn.quantized.dynamic.Linear)
