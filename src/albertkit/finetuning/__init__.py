"""Fine-tuning and evaluation on GLUE, SQuAD v1.1/v2.0, RACE, CoNLL NER and your own CSV/JSONL.

    >>> from albertkit.finetuning import read_glue, glue_metrics
    >>> dev = read_glue("rte", "glue/RTE/dev.tsv")    # doctest: +SKIP

Readers (``readers``) -> features (``features``, needs a tokenizer) -> model -> postprocessing
(``squad``) -> metrics (``metrics``) and prediction files (``writers``, ``squad``). What differs
between tasks is one object per task (``kinds``); ``run`` is the flow they share.
"""

from __future__ import annotations

from albertkit.finetuning import metrics, readers
from albertkit.finetuning.kinds import FINETUNING_TASKS, FinetuningTask, get_task
from albertkit.finetuning.metrics import *  # noqa: F403  (the names in metrics.__all__)
from albertkit.finetuning.readers import *  # noqa: F403  (the names in readers.__all__)
from albertkit.finetuning.tasks import GLUE_TASKS, TASK_DEFAULTS, get_glue_task

__all__ = [
    *readers.__all__,
    *metrics.__all__,
    "GLUE_TASKS",
    "TASK_DEFAULTS",
    "get_glue_task",
    "FinetuningTask",
    "FINETUNING_TASKS",
    "get_task",
]
