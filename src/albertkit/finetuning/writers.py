"""Prediction files in the formats graders read: GLUE submission TSVs (SQuAD JSON is in ``squad``).

    >>> write_glue_predictions("out/RTE.tsv", "rte", [0, 1, 1])   # doctest: +SKIP
    # index\tprediction / 0\tentailment / 1\tnot_entailment / ...
"""

from __future__ import annotations

import os
from typing import Sequence

from albertkit.finetuning.tasks import GlueTask, get_glue_task
from albertkit.utils import atomic_write_text

__all__ = ["write_glue_predictions"]


def write_glue_predictions(
    path: str | os.PathLike,
    task: str | GlueTask,
    predictions: Sequence[int | str | float],
    ids: Sequence[str | int] | None = None,
) -> None:
    """Write ``index<TAB>prediction`` rows, the layout of GLUE leaderboard files (``RTE.tsv`` ...).

    Classification predictions may be label ids (mapped through the task's label list) or label
    strings; STS-B scores are written with three decimals, clipped to the 0..5 scale. ``ids``
    default to 0..N-1, the row order of GLUE's test files. The file is replaced atomically.
    """
    spec = get_glue_task(task) if isinstance(task, str) else task
    if ids is None:
        ids = range(len(predictions))
    if len(ids) != len(predictions):
        raise ValueError(f"{len(ids)} ids but {len(predictions)} predictions")
    lines = ["index\tprediction"]
    for index, pred in zip(ids, predictions):
        if spec.labels is None:
            value = f"{min(5.0, max(0.0, float(pred))):.3f}"
        elif isinstance(pred, str):
            if pred not in spec.labels:
                raise ValueError(f"prediction {pred!r} is not a {spec.name} label ({', '.join(spec.labels)})")
            value = pred
        else:
            k = int(pred)
            if not 0 <= k < len(spec.labels):
                raise ValueError(f"prediction id {k} out of range for {spec.name} ({len(spec.labels)} labels)")
            value = spec.labels[k]
        lines.append(f"{index}\t{value}")
    atomic_write_text(path, "\n".join(lines) + "\n")
