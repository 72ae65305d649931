"""The fine-tuning tasks albertkit knows by name: columns, label sets, metrics, recipe defaults.

Label orders follow the GLUE processors that the published checkpoints were fine-tuned with
(e.g. MNLI ``contradiction, entailment, neutral``), so a classifier head trained elsewhere maps
to the same ids. Hyperparameters are ALBERT's albert-base-v2 recipe (Google's ``run_glue.sh`` /
``run_squad_v*`` / ``run_race`` settings), see docs ALBERT_REFERENCE.md section 5.

    >>> GLUE_TASKS["mnli"].labels
    ('contradiction', 'entailment', 'neutral')
    >>> TASK_DEFAULTS["rte"].learning_rate
    3e-05
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["GlueTask", "GLUE_TASKS", "TaskDefaults", "TASK_DEFAULTS", "get_glue_task"]


@dataclass(frozen=True)
class GlueTask:
    """How one GLUE task's TSV files are laid out.

    Columns are header names, except for CoLA, whose train/dev files have no header and are
    addressed by position (``int``). ``labels`` is ``None`` for the regression task (STS-B).
    ``test_columns`` name the columns of the unlabeled test files where they differ.
    """

    name: str
    text_a: str | int
    text_b: str | int | None
    label: str | int
    labels: tuple[str, ...] | None
    has_header: bool = True
    id_column: str | int | None = "index"
    metrics: tuple[str, ...] = ("accuracy",)
    # split name -> file name inside the task folder (as download_glue_data.py writes them).
    files: dict[str, str] = field(default_factory=lambda: {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"})
    # file stem of the GLUE leaderboard submission (CoLA.tsv, MNLI-m.tsv, ...)
    submission_name: str = ""
    # What a fine-tuned model calls its labels (config id2label), where the files only say 0 / 1.
    label_names: tuple[str, ...] | None = None

    @property
    def display_labels(self) -> tuple[str, ...] | None:
        """``label_names`` if the task has them, else ``labels`` (``"0"``/``"1"`` mean nothing to a reader)."""
        return self.label_names or self.labels

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)


_BINARY = ("0", "1")
_NLI2 = ("entailment", "not_entailment")

GLUE_TASKS: dict[str, GlueTask] = {
    # CoLA train/dev: source, label, original judgement mark, sentence; no header. Test has "index\tsentence".
    "cola": GlueTask("cola", text_a=3, text_b=None, label=1, labels=_BINARY, has_header=False, id_column=None,
                     metrics=("matthews_correlation", "accuracy"), submission_name="CoLA",
                     label_names=("unacceptable", "acceptable")),
    "sst2": GlueTask("sst2", "sentence", None, "label", _BINARY, id_column=None, submission_name="SST-2",
                     label_names=("negative", "positive")),
    "mrpc": GlueTask("mrpc", "#1 String", "#2 String", "Quality", _BINARY, id_column=None,
                     metrics=("f1", "accuracy"), submission_name="MRPC", label_names=("not_equivalent", "equivalent")),
    "stsb": GlueTask("stsb", "sentence1", "sentence2", "score", None, metrics=("pearson", "spearman"),
                     submission_name="STS-B"),
    "qqp": GlueTask("qqp", "question1", "question2", "is_duplicate", _BINARY, id_column="id",
                    metrics=("f1", "accuracy"), submission_name="QQP", label_names=("not_duplicate", "duplicate")),
    "mnli": GlueTask("mnli", "sentence1", "sentence2", "gold_label", ("contradiction", "entailment", "neutral"),
                     files={"train": "train.tsv", "dev": "dev_matched.tsv", "dev_matched": "dev_matched.tsv",
                            "dev_mismatched": "dev_mismatched.tsv", "test": "test_matched.tsv",
                            "test_matched": "test_matched.tsv", "test_mismatched": "test_mismatched.tsv"},
                     submission_name="MNLI-m"),
    "qnli": GlueTask("qnli", "question", "sentence", "label", _NLI2, submission_name="QNLI"),
    "rte": GlueTask("rte", "sentence1", "sentence2", "label", _NLI2, submission_name="RTE"),
    "wnli": GlueTask("wnli", "sentence1", "sentence2", "label", _BINARY, submission_name="WNLI"),
}

# Names users type (and GLUE's folder names) -> canonical key.
_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "mnli_matched": "mnli", "mnli-mm": "mnli"}


def get_glue_task(name: str) -> GlueTask:
    """Look a GLUE task up by its key or folder name (``"SST-2"``, ``"sst2"``, ``"STS-B"`` ...)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task {name!r}; known: {', '.join(sorted(GLUE_TASKS))}")
    return GLUE_TASKS[key]


@dataclass(frozen=True)
class TaskDefaults:
    """Recipe defaults for one task; every field can be overridden on the command line.

    Exactly one of ``max_steps`` / ``num_epochs`` is set; ``warmup_steps`` goes with steps and
    ``warmup_ratio`` with epochs.
    """

    learning_rate: float
    batch_size: int
    max_seq_length: int
    max_steps: int | None = None
    num_epochs: float | None = None
    warmup_steps: int | None = None
    warmup_ratio: float | None = None
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0


# Google's script uses max length 512 for GLUE; 128 covers >99% of GLUE pairs and is 4x cheaper,
# which is what most reproductions (including HF's run_glue) use.
TASK_DEFAULTS: dict[str, TaskDefaults] = {
    "sst2": TaskDefaults(1e-5, 32, 128, max_steps=20935, warmup_steps=1256),
    "mnli": TaskDefaults(3e-5, 128, 128, max_steps=10000, warmup_steps=1000),
    "cola": TaskDefaults(1e-5, 16, 128, max_steps=5336, warmup_steps=320),
    "qnli": TaskDefaults(1e-5, 32, 128, max_steps=33112, warmup_steps=1986),
    "qqp": TaskDefaults(5e-5, 128, 128, max_steps=14000, warmup_steps=1000),
    "rte": TaskDefaults(3e-5, 32, 128, max_steps=800, warmup_steps=200),
    "stsb": TaskDefaults(2e-5, 16, 128, max_steps=3598, warmup_steps=214),
    "mrpc": TaskDefaults(2e-5, 32, 128, max_steps=800, warmup_steps=200),
    # Not in ALBERT's table (WNLI is usually reported as the majority class); RTE's small-data recipe.
    "wnli": TaskDefaults(3e-5, 32, 128, max_steps=800, warmup_steps=200),
    "squad1": TaskDefaults(5e-5, 48, 384, num_epochs=2, warmup_ratio=0.1),
    "squad2": TaskDefaults(5e-5, 48, 384, num_epochs=3, warmup_ratio=0.1),
    "race": TaskDefaults(1e-5, 32, 512, max_steps=12000, warmup_steps=1000),
    # No ALBERT recipe exists for these; BERT-style fine-tuning defaults.
    "ner": TaskDefaults(5e-5, 32, 128, num_epochs=3, warmup_ratio=0.1),
    "classification": TaskDefaults(2e-5, 32, 128, num_epochs=3, warmup_ratio=0.1),
    "regression": TaskDefaults(2e-5, 32, 128, num_epochs=3, warmup_ratio=0.1),
}

# SQuAD windowing and decoding (Google's run_squad_v1/v2 flags).
SQUAD_DOC_STRIDE = 128
SQUAD_MAX_QUERY_LENGTH = 64
SQUAD_N_BEST = 20
SQUAD_MAX_ANSWER_LENGTH = 30
