"""Helpers of the Keras tests: the skip rule, reference checkpoints made by transformers, padded batches."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import require_reference

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up notices
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def require_keras() -> None:
    """Skip the calling test module when the tf extra is absent, except under CI=true (there it must run)."""
    require_reference("keras", "the tf extra: pip install -e '.[tf]'")
    require_reference("tensorflow", "the tf extra: pip install -e '.[tf]'")


# Two shapes: ALBERT-base (one shared block) and a small G=2 groups of K=2 blocks with exact GELU.
def shape_config(name: str, **overrides):
    from albertkit import AlbertConfig

    if name == "base":
        return AlbertConfig.from_name("albert-base-v2", **overrides)
    if name == "g2k2":
        data = dict(vocab_size=120, embedding_size=16, hidden_size=32, num_hidden_layers=4, num_hidden_groups=2,
                    inner_group_num=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                    hidden_act="gelu", num_labels=3)
        data.update(overrides)
        return AlbertConfig(**data)
    raise ValueError(name)


def make_hf_checkpoint(config, class_name: str, folder: Path, seed: int = 0) -> Path:
    """A transformers model of ``class_name`` with every parameter random (biases and LayerNorms too), saved by transformers."""
    import torch
    import transformers

    torch.manual_seed(seed)
    hf_config = transformers.AlbertConfig(**config.to_dict())
    model = getattr(transformers, class_name)(hf_config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if name.endswith("LayerNorm.weight") or name.endswith("layer_norm.weight") else 0.0
            p.copy_(base + 0.02 * torch.randn_like(p))
    model.save_pretrained(folder)
    return folder


def padded_batch(vocab_size: int, lengths=(9, 6, 3), seed: int = 1) -> dict[str, np.ndarray]:
    """[B, T] int32 ids / mask / token types: rows of different lengths padded to the longest, two segments each."""
    rng = np.random.default_rng(seed)
    T = max(lengths)
    ids = np.zeros((len(lengths), T), np.int32)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, :n] = rng.integers(5, vocab_size, n)
        ids[i, 0], ids[i, n - 1] = 2, 3
        mask[i, :n] = 1
        types[i, n // 2 : n] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
