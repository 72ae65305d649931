"""Fine-tuning and evaluation on GLUE, SQuAD v1.1/v2.0, RACE, CoNLL NER and your own CSV/JSONL.

    >>> from albertkit.finetuning import read_glue, glue_metrics
    >>> dev = read_glue("rte", "glue/RTE/dev.tsv")    # doctest: +SKIP

Readers (``readers``) -> features (``features``, needs a tokenizer) -> model -> postprocessing
(``squad``) -> metrics (``metrics``) and prediction files (``writers``, ``squad``).
"""

from __future__ import annotations

from albertkit.finetuning.metrics import (
    accuracy,
    f1_binary,
    glue_metrics,
    matthews_correlation,
    normalize_answer,
    pearson,
    race_accuracy,
    spearman,
    squad_v1_scores,
    squad_v2_scores,
)
from albertkit.finetuning.readers import (
    DataFormatError,
    RaceExample,
    SquadExample,
    TextExample,
    TokenExample,
    infer_label_list,
    parse_article_range,
    read_conll,
    read_glue,
    read_race,
    read_squad,
    read_table,
    squad_article_count,
)
from albertkit.finetuning.tasks import GLUE_TASKS, TASK_DEFAULTS, get_glue_task

__all__ = [
    "DataFormatError",
    "TextExample",
    "SquadExample",
    "RaceExample",
    "TokenExample",
    "read_glue",
    "read_table",
    "read_squad",
    "parse_article_range",
    "squad_article_count",
    "read_race",
    "read_conll",
    "infer_label_list",
    "accuracy",
    "matthews_correlation",
    "f1_binary",
    "pearson",
    "spearman",
    "glue_metrics",
    "normalize_answer",
    "squad_v1_scores",
    "squad_v2_scores",
    "race_accuracy",
    "GLUE_TASKS",
    "TASK_DEFAULTS",
    "get_glue_task",
]
