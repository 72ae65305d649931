"""albertkit.batching: padding against torch's pad_sequence, run order, and batched = one-at-a-time prediction."""

from __future__ import annotations

import random

import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from albertkit.batching import length_order, pad, predict


def _rows(seed: int, n: int, vocab: int = 100) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(3, vocab) for _ in range(rng.randrange(1, 12))] for _ in range(n)]


@pytest.mark.parametrize("multiple", [None, 1, 8])
def test_pad_matches_pad_sequence(multiple):
    ids = _rows(0, 7)
    feats = [{"input_ids": r, "attention_mask": [1] * len(r), "labels": i % 3, "score": i / 2, "note": "kept out"}
             for i, r in enumerate(ids)]
    batch = pad(feats, {"input_ids": 1, "attention_mask": 0, "labels": -100, "score": 0}, pad_to_multiple_of=multiple)
    want = pad_sequence([torch.tensor(r) for r in ids], batch_first=True, padding_value=1)
    width = want.shape[1] if multiple is None else -(-want.shape[1] // multiple) * multiple
    want = torch.nn.functional.pad(want, (0, width - want.shape[1]), value=1)
    assert torch.equal(batch["input_ids"], want)
    assert batch["attention_mask"].sum(1).tolist() == [len(r) for r in ids]
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [i % 3 for i in range(7)]
    assert batch["score"].dtype == torch.float32 and batch["score"].tolist() == [i / 2 for i in range(7)]
    assert set(batch) == {"input_ids", "attention_mask", "labels", "score"}  # bookkeeping keys stay out


def test_pad_choices_to_the_longest_row_of_the_batch():
    a, b = _rows(1, 4), _rows(2, 4)  # two questions, four choices each
    batch = pad([{"input_ids": a}, {"input_ids": b}], {"input_ids": 0})
    flat = pad_sequence([torch.tensor(r) for r in a + b], batch_first=True)
    assert torch.equal(batch["input_ids"], flat.view(2, 4, -1))


def test_pad_refuses_an_empty_batch_and_a_bad_multiple():
    with pytest.raises(ValueError, match="empty batch"):
        pad([], {"input_ids": 0})
    with pytest.raises(ValueError, match="pad_to_multiple_of must be at least 1, got 0"):
        pad([{"input_ids": [1]}], {"input_ids": 0}, pad_to_multiple_of=0)


def test_length_order_is_stable_longest_first_with_its_inverse():
    lengths = [3, 7, 3, 1, 7, 5]
    order, inverse = length_order(lengths)
    assert order == sorted(range(6), key=lambda i: lengths[i], reverse=True) == [1, 4, 5, 0, 2, 3]
    assert [order[k] for k in inverse] == list(range(6)) and [inverse[i] for i in order] == list(range(6))


def test_predict_in_length_order_equals_one_at_a_time(tiny_config):
    from albertkit import AlbertForSequenceClassification

    torch.manual_seed(0)
    model = AlbertForSequenceClassification(tiny_config).train()
    ids = _rows(3, 9, vocab=tiny_config.vocab_size)
    feats = [{"input_ids": r, "attention_mask": [1] * len(r)} for r in ids]
    collate = lambda group: pad(group, {"input_ids": 0, "attention_mask": 0})  # noqa: E731
    logits: list = [None] * len(feats)
    seen: list[int] = []

    def keep(out, batch, indices):
        assert not out.logits.requires_grad  # no autograd graph during prediction
        seen.append(batch["input_ids"].shape[1])
        for row, i in enumerate(indices):
            logits[i] = out.logits[row]
        return len(indices)

    order, _ = length_order([len(r) for r in ids])
    sizes = predict(model, feats, keep, batch_size=4, collate=collate, order=order, autocast=False)
    assert sizes == [4, 4, 1] and seen == sorted(seen, reverse=True)  # longest batch first
    assert model.training  # the caller's mode is restored
    model.eval()
    with torch.no_grad():
        for r, got in zip(ids, logits):
            alone = model(input_ids=torch.tensor([r])).logits[0]
            torch.testing.assert_close(got, alone, rtol=1e-5, atol=1e-5)


def test_predict_default_collate_and_custom_forward(tiny_config):
    from albertkit import AlbertModel

    torch.manual_seed(0)
    model = AlbertModel(tiny_config).eval()
    data = [torch.tensor(r) for r in [[5, 6, 7, 8]] * 5]
    hidden = predict(model, data, lambda out, batch, idx: out, batch_size=2, inference_mode=True,
                     forward=lambda batch, idx: model(input_ids=batch).last_hidden_state[:, 0])
    assert [h.shape[0] for h in hidden] == [2, 2, 1] and hidden[0].is_inference()
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        predict(model, data, lambda *a: None, batch_size=0)


def test_predict_leaves_an_eval_mode_stand_in_alone():
    class Stub:  # what fast.OrtModel offers: training=False, eval(), a call; no train(), no parameters()
        training = False

        def eval(self):
            raise AssertionError("already in eval mode")

        def __call__(self, input_ids):
            return input_ids.sum(1)

    data = [{"input_ids": [1, 2]}, {"input_ids": [3]}]
    sums = predict(Stub(), data, lambda out, batch, idx: out.tolist(), batch_size=2, device="cpu",
                   collate=lambda g: pad(g, {"input_ids": 0}))
    assert sums == [[3, 3]]
