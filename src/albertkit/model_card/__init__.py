"""Describing a model honestly: bias measurements and a model card generated from measured results.

* ``occupation_probe``: the card's "The man / The woman worked as a [MASK]." probe over templates x
  subject pairs (``albertkit.model_card.probe``);
* ``read_crows_pairs`` / ``score_crows_pairs``: CrowS-Pairs with the data set's own metric
  (``albertkit.model_card.crows_pairs``);
* ``render_card`` / ``write_card``: README.md from a model folder's files (``albertkit.model_card.card``).

Command line: ``albertkit bias MODEL ...`` and ``albertkit card MODEL --output README.md``.
"""

import importlib
from typing import Any

# Imported on first use: the CLI registers `bias` and `card` from this package, and
# `albertkit --help` must not pay for torch.
_EXPORTS = {
    "occupation_probe": "albertkit.model_card.probe",
    "read_crows_pairs": "albertkit.model_card.crows_pairs",
    "score_crows_pairs": "albertkit.model_card.crows_pairs",
    "write_scores_csv": "albertkit.model_card.crows_pairs",
    "render_card": "albertkit.model_card.card",
    "write_card": "albertkit.model_card.card",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'albertkit.model_card' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
