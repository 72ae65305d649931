"""Task data readers: GLUE TSVs, SQuAD JSON, RACE, CoNLL, and generic CSV / TSV / JSONL.

Every reader returns plain dataclasses and raises :class:`DataFormatError` (a ``ValueError``)
naming the file and the line, or the question id, of the first bad record.

    >>> dev = read_glue("sst2", "/data/glue/SST-2/dev.tsv")   # doctest: +SKIP
    >>> dev[0]
    TextExample(guid='dev-1', text_a="it 's a charming and often affecting journey . ", text_b=None, label='1', ...)
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from albertkit.finetuning.tasks import GlueTask, get_glue_task

__all__ = [
    "DataFormatError",
    "TextExample",
    "SquadAnswer",
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
]

logger = logging.getLogger(__name__)

# GLUE sentences can be long (QNLI passages); the csv default field limit is 128 KiB.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _shown(header: Sequence[str], width: int = 120) -> str:
    """A header for an error message, cut short: a JSON file read as TSV has a megabyte-long "header"."""
    text = ", ".join(header)
    return text if len(text) <= width else text[: width - 3] + "... (is this a TSV/CSV file?)"


class DataFormatError(ValueError):
    """A data file does not have the expected layout; the message names the file and line or id."""

    def __init__(self, path: str | os.PathLike, where: str | int | None, problem: str) -> None:
        self.path = str(path)
        self.where = where
        self.problem = problem
        loc = self.path if where is None else (f"{self.path}:{where}" if isinstance(where, int) else f"{self.path} ({where})")
        super().__init__(f"{loc}: {problem}")


@dataclass
class TextExample:
    """One sentence or sentence pair for sequence classification or regression.

    ``label`` is the label string as written in the file (classification), a float (regression),
    or ``None`` for an unlabeled test set. ``line`` is the 1-based line in the source file.
    """

    guid: str
    text_a: str
    text_b: str | None = None
    label: str | float | None = None
    line: int = 0


@dataclass
class SquadAnswer:
    text: str
    answer_start: int


@dataclass
class SquadExample:
    """One SQuAD question with its context. ``answers`` is empty for v2 unanswerable questions."""

    qid: str
    question: str
    context: str
    answers: list[SquadAnswer] = field(default_factory=list)
    is_impossible: bool = False
    title: str = ""


@dataclass
class RaceExample:
    """One RACE question: four options, ``label`` in 0..3 (A..D) or ``None``; ``level`` middle/high."""

    qid: str
    article: str
    question: str
    options: list[str]
    label: int | None
    level: str


@dataclass
class TokenExample:
    """One sentence of a CoNLL file: its words and one label per word (``None`` when unlabeled)."""

    guid: str
    words: list[str]
    labels: list[str] | None
    line: int = 0


# --------------------------------------------------------------------------------------------------
# GLUE
# --------------------------------------------------------------------------------------------------


def _read_tsv_rows(path: Path) -> list[list[str]]:
    # GLUE files are written without quoting: a '"' inside a sentence is a literal character, so
    # QUOTE_NONE is required (the default dialect would merge lines at an unbalanced quote, e.g.
    # MRPC's `" The foodservice pie business ...`). utf-8-sig drops the BOM that starts MRPC files.
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _column_index(path: Path, header: list[str], column: str | int, what: str) -> int:
    if isinstance(column, int):
        return column
    try:
        return header.index(column)
    except ValueError:
        raise DataFormatError(path, 1, f"missing {what} column {column!r} (header has: {_shown(header)})") from None


def read_glue(task: str | GlueTask, path: str | os.PathLike, *, skip_malformed: bool = False) -> list[TextExample]:
    """Read one GLUE TSV file (train, dev or test) as distributed by GLUE's download script.

    Columns are found by header name, so the unlabeled test files (which lack the label column
    and start with ``index``) read with the same call; their examples have ``label=None``.
    A row with too few fields or a label outside the task's label set raises
    :class:`DataFormatError` naming the line, unless ``skip_malformed`` (then such rows are
    counted and reported in one warning; GLUE's QQP train file is the usual reason to want this).

        >>> read_glue("mrpc", "glue/MRPC/dev.tsv")[0].label   # doctest: +SKIP
        '1'
    """
    spec = get_glue_task(task) if isinstance(task, str) else task
    path = Path(path)
    rows = _read_tsv_rows(path)
    if not rows:
        raise DataFormatError(path, None, "file is empty")
    split = path.stem
    header: list[str] | None = None
    text_a, text_b, label, id_col = spec.text_a, spec.text_b, spec.label, spec.id_column
    first_data_line = 1
    if spec.has_header:
        header = rows[0]
        first_data_line = 2
    elif rows[0] and rows[0][0] == "index":
        # CoLA's test file is the one CoLA file with a header: "index\tsentence".
        header = rows[0]
        first_data_line = 2
        text_a, label, id_col = "sentence", "label", "index"

    label_idx: int | None
    if header is not None:
        a_idx = _column_index(path, header, text_a, "text")
        b_idx = None if text_b is None else _column_index(path, header, text_b, "text pair")
        label_idx = header.index(label) if isinstance(label, str) and label in header else None
        if label_idx is None and "index" not in header and "id" not in header:
            # Labeled files (train/dev) must carry the label; only test files (which carry an id column) may lack it.
            raise DataFormatError(path, 1, f"missing label column {label!r} (header has: {_shown(header)})")
        id_idx = header.index(id_col) if isinstance(id_col, str) and id_col in header else None
        if id_idx is None and "index" in header:
            id_idx = header.index("index")
    else:
        a_idx = int(text_a)
        b_idx = None if text_b is None else int(text_b)
        label_idx = int(label)
        id_idx = None
    need = max(i for i in (a_idx, b_idx, label_idx, id_idx) if i is not None) + 1

    examples: list[TextExample] = []
    skipped: list[int] = []
    labels = set(spec.labels) if spec.labels is not None else None
    for offset, row in enumerate(rows[first_data_line - 1 :]):
        line = first_data_line + offset
        if row == [] or row == [""]:
            continue
        try:
            if len(row) < need:
                raise DataFormatError(path, line, f"{len(row)} tab-separated fields, expected at least {need}")
            value: str | float | None = None
            if label_idx is not None:
                raw = row[label_idx].strip()
                if labels is None:
                    try:
                        value = float(raw)
                    except ValueError:
                        raise DataFormatError(path, line, f"score {raw!r} is not a number") from None
                else:
                    if raw not in labels:
                        raise DataFormatError(
                            path, line, f"label {raw!r} is not one of {', '.join(spec.labels or ())} ({spec.name})"
                        )
                    value = raw
        except DataFormatError:
            if not skip_malformed:
                raise
            skipped.append(line)
            continue
        guid = f"{split}-{row[id_idx] if id_idx is not None else line - first_data_line + 1}"
        examples.append(
            TextExample(guid, row[a_idx], None if b_idx is None else row[b_idx], value, line)
        )
    if skipped:
        logger.warning("%s: skipped %d malformed rows (first lines: %s)", path, len(skipped), skipped[:10])
    return examples


# --------------------------------------------------------------------------------------------------
# Generic CSV / TSV / JSONL
# --------------------------------------------------------------------------------------------------


def _table_format(path: Path, fmt: str | None) -> str:
    if fmt:
        fmt = fmt.lower()
    else:
        suffix = path.suffix.lower()
        fmt = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}.get(suffix, "")
    if fmt not in ("csv", "tsv", "jsonl"):
        raise ValueError(f"{path}: cannot tell the format from the name; pass format='csv', 'tsv' or 'jsonl'")
    return fmt


def _iter_table_records(path: Path, fmt: str) -> Iterable[tuple[int, dict]]:
    if fmt == "jsonl":
        with open(path, encoding="utf-8-sig") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataFormatError(path, line_no, f"invalid JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise DataFormatError(path, line_no, f"expected a JSON object, got {type(record).__name__}")
                yield line_no, record
        return
    # User CSV/TSV files come from spreadsheets and pandas, which quote fields that contain the
    # delimiter or quotes, so the standard (quote-aware) dialect is right here -- unlike GLUE.
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t" if fmt == "tsv" else ",")
        try:
            header = next(reader)
        except StopIteration:
            raise DataFormatError(path, None, "file is empty") from None
        for row in reader:
            if not row:
                continue
            line_no = reader.line_num
            if len(row) != len(header):
                raise DataFormatError(path, line_no, f"{len(row)} fields, header has {len(header)}")
            yield line_no, dict(zip(header, row))


def read_table(
    path: str | os.PathLike,
    *,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str | None = "label",
    label_list: Sequence[str] | None = None,
    regression: bool = False,
    format: str | None = None,
) -> list[TextExample]:
    """Read a CSV / TSV (with a header row) or JSONL file of texts and labels.

    ``label_list`` restricts classification labels (a label outside it is an error naming the
    line); ``regression`` parses labels as floats. ``label_column=None`` reads unlabeled data.
    JSON labels may be strings, ints or bools; they are kept as their string form.

        >>> read_table("reviews.jsonl", text_column="review", label_column="stars")  # doctest: +SKIP
    """
    path = Path(path)
    fmt = _table_format(path, format)
    allowed = None if label_list is None else {str(x) for x in label_list}
    examples: list[TextExample] = []
    for line_no, record in _iter_table_records(path, fmt):
        for col in (text_column, text_pair_column, label_column):
            if col is not None and col not in record:
                raise DataFormatError(path, line_no, f"missing column {col!r} (has: {', '.join(map(str, record))})")
        text = record[text_column]
        pair = None if text_pair_column is None else record[text_pair_column]
        for col, val in ((text_column, text), (text_pair_column, pair)):
            if col is not None and not isinstance(val, str):
                raise DataFormatError(path, line_no, f"column {col!r} is {type(val).__name__}, expected text")
        label: str | float | None = None
        if label_column is not None:
            raw = record[label_column]
            if regression:
                try:
                    label = float(raw)
                except (TypeError, ValueError):
                    raise DataFormatError(path, line_no, f"label {raw!r} is not a number") from None
            else:
                label = str(raw).lower() if isinstance(raw, bool) else str(raw)
                if allowed is not None and label not in allowed:
                    raise DataFormatError(path, line_no, f"label {label!r} is not one of {', '.join(map(str, label_list or ()))}")
        examples.append(TextExample(f"{path.stem}-{len(examples) + 1}", text, pair, label, line_no))
    return examples


def infer_label_list(examples: Iterable[TextExample | TokenExample]) -> list[str]:
    """The sorted set of labels seen in training examples (numeric labels sorted numerically)."""
    seen: set[str] = set()
    for ex in examples:
        if isinstance(ex, TokenExample):
            seen.update(ex.labels or ())
        elif ex.label is not None:
            seen.add(str(ex.label))
    try:
        return sorted(seen, key=float)
    except ValueError:
        return sorted(seen)


# --------------------------------------------------------------------------------------------------
# SQuAD
# --------------------------------------------------------------------------------------------------


_RANGE = re.compile(r"^\s*(\d*)\s*:\s*(\d*)\s*$")


def parse_article_range(spec: str | slice | range | None) -> slice | None:
    """``"START:STOP"`` -> ``slice(START, STOP)``: articles START..STOP-1 of a SQuAD file, 0-based,
    in file order, half-open like a Python slice; either end may be left out (``"24:"``).

    SQuAD ships no train file here, so fine-tuning splits dev *by article* (never by question:
    questions of one paragraph share their context, which would leak across the split).

        >>> parse_article_range("0:24"), parse_article_range("24:")
        (slice(0, 24, None), slice(24, None, None))
    """
    if spec is None or isinstance(spec, slice):
        return spec
    if isinstance(spec, range):
        if spec.step != 1:
            raise ValueError(f"article range {spec!r}: only contiguous ranges (step 1)")
        return slice(spec.start, spec.stop)
    match = _RANGE.match(str(spec))
    if match is None:
        raise ValueError(f"article range {spec!r}: expected START:STOP (0-based, STOP excluded), e.g. 0:24")
    start, stop = (int(g) if g else None for g in match.groups())
    if start is not None and stop is not None and stop <= start:
        raise ValueError(f"article range {spec!r} is empty (STOP must be greater than START)")
    return slice(start, stop)


def _load_squad_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            dataset = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, exc.lineno, f"invalid JSON ({exc.msg})") from None
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise DataFormatError(path, None, "not a SQuAD file: expected an object with a 'data' list")
    return dataset


def squad_article_count(path: str | os.PathLike) -> int:
    """Number of articles (``data`` entries) in a SQuAD file: 48 in the official v1.1 dev set.

        >>> squad_article_count("squad/dev-v1.1.json")   # doctest: +SKIP
        48
    """
    return len(_load_squad_json(Path(path))["data"])


def _article_indices(path: Path, count: int, articles: slice | None) -> range:
    if articles is None:
        return range(count)
    start = 0 if articles.start is None else articles.start
    stop = count if articles.stop is None else articles.stop
    if start < 0 or stop <= start:
        raise DataFormatError(path, None, f"article range {start}:{stop} is empty or negative")
    if start >= count or stop > count:
        raise DataFormatError(
            path, None, f"article range {start}:{stop} is outside the file's {count} articles (valid: 0..{count})"
        )
    return range(start, stop)


def read_squad(
    path: str | os.PathLike, *, on_bad_answer: str = "skip", articles: str | slice | range | None = None
) -> list[SquadExample]:
    """Read a SQuAD v1.1 / v2.0 JSON file into one example per question.

    ``articles`` keeps only some articles (``"0:24"``, a slice or a range; see
    :func:`parse_article_range`): the way to split one file by article into train and eval parts.

    Each answer must occur verbatim at its ``answer_start`` in the context (that is what training
    targets are built from). ``on_bad_answer`` decides what happens otherwise:

    - ``"skip"`` (default): drop the question and report the count and ids in one warning -- what
      Google's and Hugging Face's SQuAD training readers do ("Could not find answer");
    - ``"error"``: raise :class:`DataFormatError` naming the file and question id;
    - ``"keep"``: keep it untouched, as the official *evaluation* scripts do (they score answer
      texts only and never look at offsets).

        >>> examples = read_squad("squad/dev-v1.1.json")   # doctest: +SKIP
        >>> len(examples), len(read_squad("squad/dev-v1.1.json", articles="24:48"))   # doctest: +SKIP
        (10570, 4874)
    """
    if on_bad_answer not in ("skip", "error", "keep"):
        raise ValueError(f"on_bad_answer must be 'skip', 'error' or 'keep', not {on_bad_answer!r}")
    path = Path(path)
    selection = parse_article_range(articles)
    dataset = _load_squad_json(path)
    examples: list[SquadExample] = []
    bad: list[str] = []
    for a_idx in _article_indices(path, len(dataset["data"]), selection):
        article = dataset["data"][a_idx]
        title = article.get("title", "")
        for p_idx, para in enumerate(article.get("paragraphs", ())):
            where = f"article {a_idx} {title!r}, paragraph {p_idx}"
            if "context" not in para or "qas" not in para:
                raise DataFormatError(path, where, "paragraph lacks 'context' or 'qas'")
            context = para["context"]
            for qa in para["qas"]:
                qid = qa.get("id")
                if qid is None or "question" not in qa:
                    raise DataFormatError(path, where, "question lacks 'id' or 'question'")
                impossible = bool(qa.get("is_impossible", False))
                answers = []
                for ans in qa.get("answers", ()):
                    try:
                        answers.append(SquadAnswer(ans["text"], int(ans["answer_start"])))
                    except (KeyError, TypeError, ValueError):
                        raise DataFormatError(path, f"question id {qid}", "answer lacks 'text' or an integer 'answer_start'") from None
                if not impossible and not answers:
                    raise DataFormatError(path, f"question id {qid}", "no answers and not marked is_impossible")
                mismatch = next(
                    (a for a in answers if context[a.answer_start : a.answer_start + len(a.text)] != a.text), None
                )
                if mismatch is not None and on_bad_answer != "keep":
                    if on_bad_answer == "error":
                        found = context.find(mismatch.text)
                        hint = f"; the text occurs at {found}" if found >= 0 else "; the text does not occur in the context"
                        raise DataFormatError(
                            path, f"question id {qid}",
                            f"answer {mismatch.text!r} is not at answer_start {mismatch.answer_start}{hint}",
                        )
                    bad.append(qid)
                    continue
                examples.append(SquadExample(qid, qa["question"], context, answers, impossible, title))
    if bad:
        logger.warning(
            "%s: skipped %d questions whose answer text is not at its answer_start (ids: %s%s)",
            path, len(bad), ", ".join(bad[:5]), ", ..." if len(bad) > 5 else "",
        )
    return examples


# --------------------------------------------------------------------------------------------------
# RACE
# --------------------------------------------------------------------------------------------------

_LEVELS = ("middle", "high")


def _race_level(file: Path, article_id: str) -> str:
    for part in reversed(file.parts[:-1]):
        if part in _LEVELS:
            return part
    match = re.match(r"(middle|high)", article_id)
    return match.group(1) if match else "unknown"


def read_race(path: str | os.PathLike) -> list[RaceExample]:
    """Read RACE articles: a folder (searched recursively for ``*.txt``, e.g. ``RACE/dev`` with its
    ``middle/`` and ``high/`` subfolders) or a single article file.

    Each file is one JSON object ``{"id", "article", "questions", "options", "answers"}`` with
    four options per question and answers ``"A"``..``"D"``. The level (middle/high) comes from the
    folder name, else from the article id (``"high73.txt"``).

        >>> dev = read_race("race/RACE/dev")    # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise DataFormatError(path, None, "no RACE article files (*.txt) in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"RACE data not found: {path}")
    examples: list[RaceExample] = []
    for file in files:
        try:
            record = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataFormatError(file, exc.lineno, f"invalid JSON ({exc.msg})") from None
        missing = [k for k in ("article", "questions", "options") if k not in record]
        if missing:
            raise DataFormatError(file, None, f"missing field(s) {', '.join(missing)}")
        article_id = str(record.get("id", file.name))
        questions, options = record["questions"], record["options"]
        answers = record.get("answers")
        if len(options) != len(questions) or (answers is not None and len(answers) != len(questions)):
            raise DataFormatError(
                file, None, f"{len(questions)} questions but {len(options)} option lists and "
                f"{'no' if answers is None else len(answers)} answers"
            )
        level = _race_level(file, article_id)
        # RACE ids already carry the level ("high73.txt"); others would collide across middle/ and high/.
        prefix = article_id if article_id.startswith(level) else f"{level}/{article_id}"
        for i, (question, opts) in enumerate(zip(questions, options)):
            if len(opts) != 4:
                raise DataFormatError(file, f"question {i}", f"{len(opts)} options, RACE has 4")
            label = None
            if answers is not None:
                ans = str(answers[i]).strip().upper()
                if ans not in ("A", "B", "C", "D"):
                    raise DataFormatError(file, f"question {i}", f"answer {answers[i]!r} is not one of A, B, C, D")
                label = "ABCD".index(ans)
            examples.append(RaceExample(f"{prefix}-{i}", record["article"], question, list(opts), label, level))
    return examples


# --------------------------------------------------------------------------------------------------
# CoNLL
# --------------------------------------------------------------------------------------------------


def read_conll(
    path: str | os.PathLike, *, label_list: Sequence[str] | None = None, labeled: bool = True
) -> list[TokenExample]:
    """Read a CoNLL-2003-style file: one word per line, label in the last column, blank lines
    between sentences, ``-DOCSTART-`` lines ignored.

    With ``labeled=False`` the word is the first column and no label is read (test data).
    ``label_list`` restricts labels; one outside it is an error naming the line.

        >>> read_conll("eng.train", label_list=["O", "B-PER", "I-PER"])   # doctest: +SKIP
    """
    path = Path(path)
    allowed = None if label_list is None else set(label_list)
    examples: list[TokenExample] = []
    words: list[str] = []
    labels: list[str] = []
    start = 0

    def flush() -> None:
        if words:
            examples.append(TokenExample(f"{path.stem}-{len(examples) + 1}", list(words), list(labels) if labeled else None, start))
            words.clear()
            labels.clear()

    with open(path, encoding="utf-8-sig") as fh:
        for line_no, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                flush()
                continue
            if fields[0] == "-DOCSTART-":
                flush()
                continue
            if not words:
                start = line_no
            words.append(fields[0])
            if labeled:
                if len(fields) < 2:
                    raise DataFormatError(path, line_no, f"word {fields[0]!r} has no label column")
                if allowed is not None and fields[-1] not in allowed:
                    raise DataFormatError(path, line_no, f"label {fields[-1]!r} is not one of {', '.join(label_list or ())}")
                labels.append(fields[-1])
    flush()
    return examples
