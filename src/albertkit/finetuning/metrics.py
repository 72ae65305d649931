"""Task metrics with the official definitions: GLUE, SQuAD v1.1 / v2.0, RACE, CoNLL entities.

Only numpy is needed at run time; the tests check every number against scikit-learn / scipy and
against hand-worked cases of the official SQuAD evaluation scripts.

    >>> accuracy([1, 0, 1], [1, 1, 1])
    0.6666666666666666
    >>> squad_v1_scores({"q1": ["the Eiffel Tower"]}, {"q1": "Eiffel tower!"})["exact_match"]
    100.0
"""

from __future__ import annotations

import logging
import math
import re
import string
from collections import Counter
from typing import Mapping, Sequence

import numpy as np

__all__ = [
    "accuracy",
    "matthews_correlation",
    "f1_binary",
    "pearson",
    "spearman",
    "glue_metrics",
    "normalize_answer",
    "squad_exact",
    "squad_f1",
    "squad_v1_scores",
    "squad_v2_scores",
    "best_null_threshold",
    "race_accuracy",
    "bio_spans",
    "entity_scores",
]

logger = logging.getLogger(__name__)


def _pair(predictions: Sequence, references: Sequence) -> tuple[np.ndarray, np.ndarray]:
    p, r = np.asarray(predictions), np.asarray(references)
    if p.shape != r.shape or p.ndim != 1:
        raise ValueError(f"predictions {p.shape} and references {r.shape} must be 1-D and the same length")
    if p.size == 0:
        raise ValueError("no predictions to score")
    return p, r


# ----------------------------------------------------------------------------------------- GLUE


def accuracy(predictions: Sequence, references: Sequence) -> float:
    """Fraction of exact matches."""
    p, r = _pair(predictions, references)
    return float(np.mean(p == r))


def matthews_correlation(predictions: Sequence, references: Sequence) -> float:
    """Matthews correlation (multi-class form of Gorodkin 2004, which reduces to the binary MCC).

    0.0 when either side is constant (the correlation is undefined; scikit-learn returns 0 too).
    """
    p, r = _pair(predictions, references)
    classes, inverse = np.unique(np.concatenate([r, p]), return_inverse=True)
    k, n = len(classes), len(r)
    confusion = np.zeros((k, k), dtype=np.float64)
    np.add.at(confusion, (inverse[:n], inverse[n:]), 1.0)  # rows: truth, columns: prediction
    true_counts, pred_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    correct, total = np.trace(confusion), confusion.sum()
    cov_tp = correct * total - true_counts @ pred_counts
    cov_pp = total**2 - pred_counts @ pred_counts
    cov_tt = total**2 - true_counts @ true_counts
    if cov_pp * cov_tt == 0:
        return 0.0
    return float(cov_tp / math.sqrt(cov_tt * cov_pp))


def f1_binary(predictions: Sequence, references: Sequence, positive: object = 1) -> float:
    """F1 of the positive class (MRPC, QQP: label 1). 0.0 when there are no positives at all."""
    p, r = _pair(predictions, references)
    tp = float(np.sum((p == positive) & (r == positive)))
    fp = float(np.sum((p == positive) & (r != positive)))
    fn = float(np.sum((p != positive) & (r == positive)))
    if tp + fp + fn == 0:
        return 0.0
    return 2 * tp / (2 * tp + fp + fn)


def pearson(predictions: Sequence[float], references: Sequence[float]) -> float:
    """Pearson correlation; NaN when either side is constant (as scipy)."""
    p, r = _pair(predictions, references)
    p, r = p.astype(np.float64), r.astype(np.float64)
    pc, rc = p - p.mean(), r - r.mean()
    denom = math.sqrt(float(pc @ pc) * float(rc @ rc))
    if denom == 0:
        return float("nan")
    return float(np.clip(pc @ rc / denom, -1.0, 1.0))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    # Ties share the mean of the ranks they span (scipy's rankdata(method="average")).
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    boundaries = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1], True])
    ranks = np.empty(len(x), dtype=np.float64)
    for lo, hi in zip(boundaries[:-1], boundaries[1:]):
        ranks[order[lo:hi]] = (lo + hi + 1) / 2.0  # mean of 1-based ranks lo+1 .. hi
    return ranks


def spearman(predictions: Sequence[float], references: Sequence[float]) -> float:
    """Spearman rank correlation: Pearson on average ranks."""
    p, r = _pair(predictions, references)
    return pearson(_average_ranks(p.astype(np.float64)), _average_ranks(r.astype(np.float64)))


def glue_metrics(task: str, predictions: Sequence, references: Sequence) -> dict[str, float]:
    """The metrics GLUE reports for ``task``, e.g. ``{"matthews_correlation": ..., "accuracy": ...}``
    for CoLA, ``{"pearson", "spearman"}`` for STS-B. Classification labels are ids (1 = positive)."""
    from albertkit.finetuning.tasks import get_glue_task

    spec = get_glue_task(task)
    functions = {
        "accuracy": accuracy,
        "matthews_correlation": matthews_correlation,
        "f1": f1_binary,
        "pearson": pearson,
        "spearman": spearman,
    }
    return {name: functions[name](predictions, references) for name in spec.metrics}


# ---------------------------------------------------------------------------------------- SQuAD

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """The official SQuAD normalisation (v1.1 and v2.0 scripts agree): lowercase, drop ASCII
    punctuation, drop the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def squad_exact(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def squad_f1(prediction: str, truth: str, *, version_2: bool = False) -> float:
    """Bag-of-tokens F1 after normalisation.

    The scripts differ only when one side normalises to nothing: v1.1 scores 0 whenever no token
    is shared; v2.0 scores 1 if both are empty (a correct "no answer") and 0 if only one is.
    """
    pred_tokens = normalize_answer(prediction).split()
    true_tokens = normalize_answer(truth).split()
    if version_2 and (not pred_tokens or not true_tokens):
        return float(pred_tokens == true_tokens)
    shared = sum((Counter(pred_tokens) & Counter(true_tokens)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(pred_tokens), shared / len(true_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_v1_scores(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]) -> dict[str, float]:
    """SQuAD v1.1 exact match and F1 (0-100) as ``evaluate-v1.1.py`` computes them.

    ``gold`` maps each question id to its answer texts. A question without a prediction scores 0
    and stays in the denominator (the official script does the same and says so on stderr).
    """
    if not gold:
        raise ValueError("no gold questions to score")
    em = f1 = 0.0
    missing = 0
    for qid, truths in gold.items():
        if qid not in predictions:
            missing += 1
            continue
        pred = predictions[qid]
        em += max(squad_exact(pred, t) for t in truths)
        f1 += max(squad_f1(pred, t) for t in truths)
    if missing:
        logger.warning("%d of %d questions have no prediction; they score 0", missing, len(gold))
    return {"exact_match": 100.0 * em / len(gold), "f1": 100.0 * f1 / len(gold), "total": len(gold), "missing": missing}


def _v2_raw_scores(
    gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]
) -> tuple[dict[str, float], dict[str, float]]:
    exact, f1 = {}, {}
    for qid, truths in gold.items():
        if qid not in predictions:
            continue
        # An unanswerable question (or one whose answers normalise to nothing) expects "".
        targets = [t for t in truths if normalize_answer(t)] or [""]
        pred = predictions[qid]
        exact[qid] = max(squad_exact(pred, t) for t in targets)
        f1[qid] = max(squad_f1(pred, t, version_2=True) for t in targets)
    return exact, f1


def best_null_threshold(
    gold: Mapping[str, Sequence[str]],
    predictions: Mapping[str, str],
    scores: Mapping[str, float],
    na_probs: Mapping[str, float],
    *,
    initial_threshold: float = 0.0,
) -> tuple[float, float]:
    """The official v2 search: the ``na_prob`` threshold above which answering "no answer" gives the
    best total score. Returns ``(best score in %, threshold)``.

    Starting from "every question unanswered" (each unanswerable one is right), questions are
    switched to their predicted answer in order of increasing ``na_prob``; an answerable one adds
    its score, an unanswerable one with a non-empty prediction costs 1.

    The starting state's threshold is 0.0 in the official script, which presumes ``na_probs`` are
    probabilities (> 0). For scores that can be negative (null score differences) pass
    ``initial_threshold`` below every score, so that "all unanswered" is what the threshold gives.
    """
    has_answer = {qid: bool(truths) for qid, truths in gold.items()}
    current = best = float(sum(1 for v in has_answer.values() if not v))
    threshold = initial_threshold
    for qid in sorted(na_probs, key=lambda q: na_probs[q]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, threshold = current, na_probs[qid]
    return 100.0 * best / len(scores), threshold


def squad_v2_scores(
    gold: Mapping[str, Sequence[str]],
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_threshold: float = 1.0,
) -> dict[str, float]:
    """SQuAD v2.0 metrics as ``evaluate-v2.0.py`` computes them.

    ``gold`` maps question ids to answer texts (empty for unanswerable questions). With
    ``na_probs`` (question id -> "no answer" score), predictions whose score exceeds
    ``na_prob_threshold`` count as "no answer", and ``best_exact``/``best_f1`` report the best
    threshold found *on this same data* (an oracle choice; report it as such).
    Keys: ``exact, f1, total, HasAns_exact, HasAns_f1, HasAns_total, NoAns_exact, NoAns_f1,
    NoAns_total`` (+ ``best_exact, best_exact_thresh, best_f1, best_f1_thresh``), ``missing``.
    Like the official script, questions without a prediction are left out of the averages.
    """
    exact, f1 = _v2_raw_scores(gold, predictions)
    if not exact:
        raise ValueError("no prediction matches a gold question id")
    missing = len(gold) - len(exact)
    if missing:
        logger.warning("%d of %d questions have no prediction; left out of the scores", missing, len(gold))
    has_answer = {qid: bool(gold[qid]) for qid in exact}
    if na_probs is not None:
        lacking = [q for q in exact if q not in na_probs]
        if lacking:
            raise ValueError(f"na_probs lacks {len(lacking)} question ids (e.g. {lacking[0]})")

        def thresholded(raw: dict[str, float]) -> dict[str, float]:
            return {
                q: (float(not has_answer[q]) if na_probs[q] > na_prob_threshold else s) for q, s in raw.items()
            }

        exact_t, f1_t = thresholded(exact), thresholded(f1)
    else:
        exact_t, f1_t = exact, f1

    def block(prefix: str, ids: list[str]) -> dict[str, float]:
        if not ids:
            return {}
        return {
            f"{prefix}exact": 100.0 * sum(exact_t[q] for q in ids) / len(ids),
            f"{prefix}f1": 100.0 * sum(f1_t[q] for q in ids) / len(ids),
            f"{prefix}total": len(ids),
        }

    result: dict[str, float] = block("", list(exact))
    result.update(block("HasAns_", [q for q in exact if has_answer[q]]))
    result.update(block("NoAns_", [q for q in exact if not has_answer[q]]))
    if na_probs is not None:
        best_exact, exact_thresh = best_null_threshold(gold, predictions, exact, na_probs)
        best_f1, f1_thresh = best_null_threshold(gold, predictions, f1, na_probs)
        result.update(best_exact=best_exact, best_exact_thresh=exact_thresh, best_f1=best_f1, best_f1_thresh=f1_thresh)
    result["missing"] = missing
    return result


# ----------------------------------------------------------------------------------------- RACE


def race_accuracy(predictions: Sequence[int], references: Sequence[int], levels: Sequence[str]) -> dict[str, float]:
    """RACE accuracy overall and per level: ``{"accuracy", "accuracy_middle", "accuracy_high",
    "total", "total_middle", "total_high"}`` (a level with no questions is left out)."""
    p, r = _pair(predictions, references)
    lv = np.asarray(levels)
    if lv.shape != p.shape:
        raise ValueError(f"levels {lv.shape} must match predictions {p.shape}")
    result: dict[str, float] = {"accuracy": float(np.mean(p == r)), "total": int(p.size)}
    for level in ("middle", "high"):
        mask = lv == level
        if mask.any():
            result[f"accuracy_{level}"] = float(np.mean(p[mask] == r[mask]))
            result[f"total_{level}"] = int(mask.sum())
    return result


# ------------------------------------------------------------------------------------ CoNLL NER


def bio_spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """Entity chunks ``(type, start, stop)`` of one BIO-tagged sentence, chunked as conlleval does:
    a chunk starts at ``B-X``, or at ``I-X`` after ``O`` or after another type.

        >>> sorted(bio_spans(["B-PER", "I-PER", "O", "I-LOC"]))
        [('LOC', 3, 4), ('PER', 0, 2)]
    """
    spans, start, kind = set(), None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        if start is not None and (tag == "O" or prefix == "B" or label != kind):
            spans.add((kind, start, i))
            start, kind = None, None
        if tag != "O" and start is None:
            start, kind = i, label
    return spans


def entity_scores(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """conlleval's entity ``f1`` / ``precision`` / ``recall`` over all sentences, and tag ``accuracy``."""
    pred_spans = {(s, *sp) for s, tags in enumerate(predictions) for sp in bio_spans(tags)}
    true_spans = {(s, *sp) for s, tags in enumerate(references) for sp in bio_spans(tags)}
    tp = len(pred_spans & true_spans)
    p = tp / len(pred_spans) if pred_spans else 0.0
    r = tp / len(true_spans) if true_spans else 0.0
    flat_p = [t for tags in predictions for t in tags]
    flat_t = [t for tags in references for t in tags]
    return {"f1": 2 * p * r / (p + r) if p + r else 0.0, "precision": p, "recall": r, "accuracy": accuracy(flat_p, flat_t)}
