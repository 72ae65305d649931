"""The plateau probes of issue #14: [MASK]-only scores, context shuffling, attention on neighbours.

The neighbour-attention figure is recomputed by hand (python loops) from transformers'
AlbertForPreTraining attentions on the same inputs; shuffling is checked for what it must keep.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_reference

from albertkit.modeling import AlbertForPreTraining
from albertkit.pretraining.probes import LanguageProbes, mask_only_scores, neighbour_attention, shuffle_context


def test_neighbour_attention_of_known_patterns() -> None:
    T = 6
    mask = torch.ones(1, T, dtype=torch.long)
    prev = torch.zeros(1, 1, T, T)
    prev[0, 0, torch.arange(1, T), torch.arange(T - 1)] = 1.0  # every piece looks at the one before
    prev[0, 0, 0, 0] = 1.0
    uniform = torch.full((1, 1, T, T), 1.0 / T)
    best, base = neighbour_attention([uniform, prev], mask)
    assert best == pytest.approx(0.5) and base == pytest.approx(1 / T)
    best_u, _ = neighbour_attention([uniform], mask)
    assert best_u == pytest.approx(1 / T)


def test_mask_only_scores_skip_copied_and_random_targets() -> None:
    logits = torch.zeros(1, 3, 5)
    logits[0, 0, 2] = logits[0, 1, 3] = logits[0, 2, 1] = 5.0
    labels = torch.tensor([[2, 3, -100]])
    input_ids = torch.tensor([[9, 4, 3, 4]])  # position 1 shows [MASK] (id 4), position 2 its own token
    positions = torch.tensor([[1, 2, 0]])
    ce, ok = mask_only_scores(logits, labels, input_ids, positions, mask_id=4)
    assert ok.tolist() == [1.0] and len(ce) == 1


def test_shuffle_keeps_specials_targets_and_segments() -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.tensor([[2, 10, 11, 4, 12, 13, 3, 20, 21, 22, 3, 0, 0]])
    types = torch.tensor([[0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0]])
    attn = (ids != 0).long()
    positions, labels = torch.tensor([[3, 8]]), torch.tensor([[15, 21]])
    special = torch.zeros(30, dtype=torch.bool)
    special[[0, 2, 3, 4]] = True
    seen = set()
    for _ in range(20):
        out = shuffle_context(ids, types, attn, positions, labels, special, gen)
        for p in (0, 3, 6, 8, 10, 11, 12):
            assert out[0, p] == ids[0, p]
        assert sorted(out[0, [1, 2, 4, 5]].tolist()) == [10, 11, 12, 13]
        assert sorted(out[0, [7, 9]].tolist()) == [20, 22]
        seen.add(tuple(out[0].tolist()))
    assert len(seen) > 1


def test_language_probes_match_transformers_attentions(tmp_path: Path, tiny_config, spiece_path: Path) -> None:
    transformers = require_reference("transformers")
    from albertkit.pretraining.masking import MaskingCollator
    from albertkit.tokenization import AlbertTokenizer

    tok = AlbertTokenizer.from_pretrained(str(spiece_path))
    torch.manual_seed(0)
    model = AlbertForPreTraining(tiny_config.replace(vocab_size=tok.vocab_size)).eval()
    model.save_pretrained(tmp_path / "m")
    rng = np.random.default_rng(0)
    data = []
    for i, n in enumerate((40, 33, 40)):
        body = rng.integers(10, tok.vocab_size, n).tolist()
        data.append({"input_ids": np.array([2, *body[: n // 2], 3, *body[n // 2 :], 3]),
                     "token_type_ids": np.array([0] * (n // 2 + 2) + [1] * (n - n // 2 + 1)),
                     "sentence_order_label": 0, "index": i})
    collator = MaskingCollator(tok, seed=3, whole_word=False, max_ngram=1)
    probes = LanguageProbes(collator, data, max_instances=3, batch_size=3)
    got = probes(model)
    hf = transformers.AlbertForPreTraining.from_pretrained(str(tmp_path / "m"), attn_implementation="eager").eval()
    b = probes.batches[0]
    with torch.no_grad():
        att = hf(input_ids=b["input_ids"], attention_mask=b["attention_mask"], token_type_ids=b["token_type_ids"],
                 output_attentions=True).attentions
    best = 0.0
    for layer in att:
        for h in range(layer.shape[1]):
            vals = []
            for r in range(layer.shape[0]):
                n = int(b["attention_mask"][r].sum())
                vals += [(float(layer[r, h, i, i - 1]) + float(layer[r, h, i, i + 1])) / 2 for i in range(1, n - 1)]
            best = max(best, sum(vals) / len(vals))
    assert got["neighbour_attention"] == pytest.approx(best, rel=1e-4)
    assert got["uniform_attention"] == pytest.approx(np.mean([1 / 43, 1 / 36, 1 / 43]), rel=1e-6)
    assert 0 < got["mask_only_tokens"] < int((b["masked_lm_labels"] != -100).sum())
    assert np.isfinite(got["shuffle_gap"]) and got["shuffle_gap"] != 0.0
    assert got == probes(model)  # fixed inputs: the same numbers every call
