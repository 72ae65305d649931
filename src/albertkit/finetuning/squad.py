"""SQuAD postprocessing: best spans over all windows of a question, the v2 null answer, prediction files.

    >>> result = postprocess_squad(examples, features, start_logits, end_logits, version_2=True)  # doctest: +SKIP
    >>> result.predictions["56be4db0acb8001400a502ec"]
    'Denver Broncos'
    >>> write_squad_predictions("out/predictions.json", result.predictions)   # doctest: +SKIP

``start_logits`` / ``end_logits`` hold one row per feature (the output of
:func:`albertkit.finetuning.features.encode_squad`), padded or not.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from albertkit.finetuning.readers import SquadExample
from albertkit.finetuning.tasks import SQUAD_MAX_ANSWER_LENGTH, SQUAD_N_BEST
from albertkit.utils import atomic_write_text

__all__ = ["SquadPredictions", "postprocess_squad", "apply_null_threshold", "write_squad_predictions", "squad_gold"]

logger = logging.getLogger(__name__)


@dataclass
class SquadPredictions:
    """What :func:`postprocess_squad` returns.

    ``predictions``: question id -> answer text ("" = no answer, v2 only), the official format.
    ``best_spans``: question id -> best non-null span text (before the null decision).
    ``null_score_diff``: question id -> null score minus best span score (v2; the larger, the
    surer "no answer"); pass it as ``na_probs`` to :func:`albertkit.finetuning.metrics.squad_v2_scores`.
    ``nbest``: question id -> list of ``{"text", "probability", "start_logit", "end_logit"}``.
    ``null_threshold``: the threshold used for ``predictions``.
    """

    predictions: dict[str, str]
    best_spans: dict[str, str]
    null_score_diff: dict[str, float] = field(default_factory=dict)
    nbest: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    null_threshold: float | None = None


def _top_indices(row: np.ndarray, k: int) -> np.ndarray:
    k = min(k, row.shape[0])
    idx = np.argpartition(-row, k - 1)[:k]
    return idx[np.argsort(-row[idx], kind="stable")]


def postprocess_squad(
    examples: Sequence[SquadExample],
    features: Sequence[Mapping[str, Any]],
    start_logits: Sequence[Sequence[float]] | np.ndarray,
    end_logits: Sequence[Sequence[float]] | np.ndarray,
    *,
    n_best: int = SQUAD_N_BEST,
    max_answer_length: int = SQUAD_MAX_ANSWER_LENGTH,
    version_2: bool = False,
    null_threshold: float = 0.0,
) -> SquadPredictions:
    """Pick each question's answer from the logits of all its windows.

    For every window the ``n_best`` start and end pieces are paired; a pair is kept when both lie
    in the context, end >= start and it spans at most ``max_answer_length`` pieces. Its score is
    start + end logit; the answer text is cut from the *original* context with the offsets, so
    spacing and case are the context's. For v2 the null score is the ``[CLS]`` start + end logit,
    minimum over windows (as Google's ``run_squad_v2``), and the question is answered "" when
    ``null - best span > null_threshold``.
    """
    if len(features) != len(start_logits) or len(features) != len(end_logits):
        raise ValueError(f"{len(features)} features but {len(start_logits)} start / {len(end_logits)} end logit rows")
    by_example: dict[str, list[int]] = defaultdict(list)
    for i, feat in enumerate(features):
        by_example[feat["example_id"]].append(i)
    out = SquadPredictions({}, {}, null_threshold=null_threshold if version_2 else None)
    for ex in examples:
        feature_ids = by_example.get(ex.qid)
        if not feature_ids:
            raise ValueError(f"question id {ex.qid} has no features")
        candidates: list[tuple[float, float, float, int, int]] = []  # score, start, end logit, char span
        null_score = math.inf
        for fi in feature_ids:
            offsets = features[fi]["offset_mapping"]
            n = len(offsets)
            starts = np.asarray(start_logits[fi], dtype=np.float64)[:n]
            ends = np.asarray(end_logits[fi], dtype=np.float64)[:n]
            null_score = min(null_score, float(starts[0] + ends[0]))
            top_ends = _top_indices(ends, n_best)
            for s in _top_indices(starts, n_best):
                if offsets[s] is None:
                    continue
                for e in top_ends:
                    if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                        continue
                    candidates.append(
                        (float(starts[s] + ends[e]), float(starts[s]), float(ends[e]), offsets[s][0], offsets[e][1])
                    )
        candidates.sort(key=lambda c: -c[0])
        # Different windows can propose the same span; keep each text once, best score first.
        seen: set[str] = set()
        nbest: list[dict[str, Any]] = []
        for score, s_logit, e_logit, c_start, c_end in candidates:
            text = ex.context[c_start:c_end]
            if text in seen:
                continue
            seen.add(text)
            nbest.append({"text": text, "score": score, "start_logit": s_logit, "end_logit": e_logit})
            if len(nbest) >= n_best:
                break
        if version_2:
            nbest.append({"text": "", "score": null_score, "start_logit": None, "end_logit": None})
        if not nbest:
            nbest.append({"text": "", "score": 0.0, "start_logit": None, "end_logit": None})
        scores = np.array([c["score"] for c in nbest])
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        for c, p in zip(nbest, probs):
            c["probability"] = float(p)
        nbest.sort(key=lambda c: -c["score"])
        best_span = next((c for c in nbest if c["text"]), None)
        out.best_spans[ex.qid] = best_span["text"] if best_span else ""
        out.nbest[ex.qid] = nbest
        if version_2:
            diff = null_score - (best_span["score"] if best_span else -math.inf)
            out.null_score_diff[ex.qid] = float(diff)
            out.predictions[ex.qid] = "" if diff > null_threshold else out.best_spans[ex.qid]
        else:
            out.predictions[ex.qid] = out.best_spans[ex.qid]
    return out


def apply_null_threshold(result: SquadPredictions, threshold: float) -> SquadPredictions:
    """Redo the v2 null decision with another threshold (e.g. ``best_f1_thresh`` found on a dev set)."""
    if not result.null_score_diff:
        raise ValueError("these predictions have no null scores (not postprocessed with version_2=True)")
    predictions = {
        q: ("" if result.null_score_diff[q] > threshold else result.best_spans[q]) for q in result.best_spans
    }
    return SquadPredictions(predictions, result.best_spans, result.null_score_diff, result.nbest, threshold)


def squad_gold(examples: Sequence[SquadExample]) -> dict[str, list[str]]:
    """Question id -> gold answer texts (empty for v2 unanswerable), the input of the SQuAD metrics."""
    return {ex.qid: [a.text for a in ex.answers] for ex in examples}


def write_squad_predictions(path: str | os.PathLike, predictions: Mapping[str, Any]) -> None:
    """Write ``{question id: answer text}`` (or any JSON-able mapping, e.g. null odds) atomically, in the
    format the official evaluation scripts read."""
    atomic_write_text(path, json.dumps(dict(predictions), ensure_ascii=False, indent=2) + "\n")
