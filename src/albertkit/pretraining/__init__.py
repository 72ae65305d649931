"""ALBERT pretraining data: raw text -> sharded token corpus -> SOP instances -> n-gram masked batches.

    >>> from albertkit.pretraining import prepare_corpus, PretrainingCorpus, SOPDataset, MaskingCollator
    >>> prepare_corpus(["corpus/"], tokenizer, Path("runs/corpus"), heldout_docs=100)        # doctest: +SKIP
    >>> dataset = SOPDataset(PretrainingCorpus("runs/corpus"), max_seq_length=128, epoch=0)  # doctest: +SKIP
    >>> batch = MaskingCollator(tokenizer)([dataset[0], dataset[1]])                          # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

# Submodules load on first use: corpus preparation needs no torch, the dataset/collator do.
_LAZY = {
    "prepare_corpus": "albertkit.pretraining.corpus",
    "PretrainingCorpus": "albertkit.pretraining.corpus",
    "CorpusEncodingError": "albertkit.pretraining.corpus",
    "CorpusFormatError": "albertkit.pretraining.corpus",
    "tokenizer_checksum": "albertkit.pretraining.corpus",
    "split_sentences": "albertkit.pretraining.sentences",
    "SOPDataset": "albertkit.pretraining.instances",
    "MaskingCollator": "albertkit.pretraining.masking",
    "mask_tokens": "albertkit.pretraining.masking",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'albertkit.pretraining' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
