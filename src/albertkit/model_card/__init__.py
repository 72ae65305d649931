"""Describing a model honestly: bias measurements and a model card generated from measured results.

* ``occupation_probe``: the card's "The man / The woman worked as a [MASK]." probe over templates x
  subject pairs (``albertkit.model_card.probe``);
* ``read_crows_pairs`` / ``score_crows_pairs``: CrowS-Pairs with the data set's own metric
  (``albertkit.model_card.crows_pairs``);
* ``render_card`` / ``write_card``: README.md from a model folder's files (``albertkit.model_card.card``).

Command line: ``albertkit bias MODEL ...`` and ``albertkit card MODEL --output README.md``.
"""

from albertkit.model_card.card import render_card, write_card
from albertkit.model_card.crows_pairs import read_crows_pairs, score_crows_pairs, write_scores_csv
from albertkit.model_card.probe import occupation_probe

__all__ = ["occupation_probe", "read_crows_pairs", "score_crows_pairs", "write_scores_csv", "render_card", "write_card"]
