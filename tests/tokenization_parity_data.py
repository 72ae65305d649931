"""Inputs for the tokenizer parity tests, shared by the tests and by the golden-value generator
(tests/golden/make_tokenization_golden.py, which runs under transformers 4.x and must not import
albertkit). Pure standard library.

Corpus files are read as UTF-8; the few Latin-1 files of the NLTK corpora (see PROVENANCE.md)
fall back to Latin-1 as a whole file, so every line is real text.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

# The transformers release whose slow (SentencePiece) AlbertTokenizer and QA pipeline made the golden
# files (tests/golden/tokenization_slow_hf4.json, tests/data/pipelines_qa_golden.json). transformers 5
# (the `test` extra pins 5.24.*) has neither; regenerate only under exactly this version.
GOLDEN_TRANSFORMERS = "4.57.1"

LINES_PER_FILE_SAMPLE = 8  # x ~370 corpus files -> ~3000 lines in the default run
PAIR_STEP_SAMPLE = 20  # every 20th GLUE / SQuAD example in the default run

HARD_CASES: list[str | tuple[str, str]] = [
    "Hello, my dog is cute",
    "nguyen duc thang",
    "I was born in 92000, and this is falsé.",
    "It costs 3.0, or 3,000, or 1,2,3, or 12,5%, ok?",
    "a1, b22, 333,444 ,5 , x9,",
    "``Quoted,'' he said. ``Another'' one '' and ``",
    "He said '''hi''' and ```` ok",
    "tabs\tand\t\tspaces   and\u00a0nbsp\u2003em\u3000ideographic",
    "   leading and trailing   ",
    "\n\nnewlines\r\nand\rreturns\n",
    "The [MASK] is here. [MASK], [MASK]! ([MASK]) \"[MASK]\" [MASK][MASK]",
    "a[MASK]b [mask] [Mask] [MASK].",
    "[CLS] start [SEP] middle [SEP] <pad> <unk> end",
    "Crème brûlée, naïve café, Ångström, São Paulo, Dvořák, Łódź",
    "ÀÉÎÕÜ ÇÑ ß ẞ Straße ΣΊΣΥΦΟΣ Ολα καλά ΟΔΟΣ",
    "İstanbul ıi KELVIN \u212a ﬁne ﬂow ＡＢＣ１２３，４５６",
    "東京は日本の首都です。中文测试，繁體中文。",
    "한국어 텍스트입니다",
    "Emoji 😀 👍🏽 👨‍👩‍👧 ❤️ and 🇺🇸 flags",
    "control\x00chars\x01here\x07 and\x1b[0m ansi \x7f del \u200b zwsp \ufeff bom",
    "Math: x² + y³ = z½ — ∑ ∞ ≤ ≥ … “curly” ‘single’ «guillemets»",
    "£100 and €200 – a dash - hyphen (parens)",
    "Arabic digits ٣٤٥, and Devanagari १२३, here",
    "URL https://example.com/a_b?c=1,2&d=3 email foo.bar@baz.org",
    "x" * 300,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "¨ ´ ` ˜ standalone diacritics",
    "",
    " ",
    "\t",
    ",",
    "1,",
    "[MASK]",
    ("What is ALBERT?", "ALBERT is A Lite BERT, released in 2019, with 12M parameters."),
    ("", "only the second"),
    ("first only", ""),
    ("Q with [MASK]?", "Answer, 1,000, 2.5, done."),
]


def read_text_file(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.is_file())


def file_lines(path: Path) -> list[str]:
    text = read_text_file(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def sample_indices(n: int, k: int = LINES_PER_FILE_SAMPLE) -> list[int]:
    if n <= k:
        return list(range(n))
    return sorted({(i * (n - 1)) // (k - 1) for i in range(k)})


def corpus_sample(corpus: Path) -> list[tuple[str, int, str]]:
    """[(relative file, line index, line)] ~8 evenly spaced lines of every corpus file."""
    out = []
    for path in corpus_files(corpus):
        lines = file_lines(path)
        for i in sample_indices(len(lines)):
            out.append((str(path.relative_to(corpus)), i, lines[i]))
    return out


def _tsv_rows(path: Path) -> list[list[str]]:
    text = path.read_text(encoding="utf-8-sig")
    return [line.split("\t") for line in text.split("\n") if line]


def glue_squad_examples(data: Path) -> dict[str, list[str | tuple[str, str]]]:
    """Every dev example of the GLUE tasks here and of both SQuAD files: text or (text, pair)."""
    out: dict[str, list] = {}
    out["CoLA/dev"] = [r[3] for r in _tsv_rows(data / "glue/CoLA/dev.tsv") if len(r) >= 4]
    for task, a, b in (("SST-2", "sentence", None), ("MRPC", "#1 String", "#2 String"), ("QNLI", "question", "sentence"),
                       ("RTE", "sentence1", "sentence2"), ("STS-B", "sentence1", "sentence2"), ("WNLI", "sentence1", "sentence2")):
        rows = _tsv_rows(data / f"glue/{task}/dev.tsv")
        head = rows[0]
        ia = head.index(a)
        ib = head.index(b) if b else None
        items = []
        for r in rows[1:]:
            if len(r) != len(head):
                continue
            items.append(r[ia] if ib is None else (r[ia], r[ib]))
        out[f"{task}/dev"] = items
    for name in ("dev-v1.1.json", "dev-v2.0.cs224n-subset.json"):
        doc = json.loads((data / "squad" / name).read_text(encoding="utf-8"))
        items = []
        for article in doc["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    items.append((qa["question"], para["context"]))
        out[f"squad/{name}"] = items
    return out


def row_digest(row: dict) -> str:
    """A short digest of one encoded row (input_ids, token_type_ids, attention_mask, special_tokens_mask)."""
    key = [list(row["input_ids"]), list(row["token_type_ids"]), list(row["attention_mask"]), list(row["special_tokens_mask"])]
    return hashlib.sha1(json.dumps(key, separators=(",", ":")).encode()).hexdigest()[:16]


def rows_digest(digests: list[str]) -> str:
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()[:32]


def hf_fast_reference(spiece: Path, folder: Path):
    """transformers 5's AlbertTokenizer as users of the hub's albert-base-v2 get it: loaded from a
    tokenizer.json that transformers' own AlbertConverter makes from spiece.model (the hub file was
    made the same way: digit-comma pieces scored -100, [MASK] with lstrip, only the five special
    tokens as added tokens; transformers 5's converter also adds the user symbols as added tokens,
    which the hub file does not have and which change the tokenisation of `` and '', so they are
    dropped here)."""
    import shutil

    from transformers import AlbertTokenizer as HFAlbertTokenizer
    from transformers.convert_slow_tokenizer import AlbertConverter

    class _Slow:  # the attributes AlbertConverter reads from a slow tokenizer
        vocab_file = str(spiece)
        do_lower_case = True
        keep_accents = False
        add_prefix_space = True

        def convert_tokens_to_ids(self, token: str) -> int:
            return {"[CLS]": 2, "[SEP]": 3}[token]

    backend = json.loads(AlbertConverter(_Slow()).converted().to_str())
    backend["added_tokens"] = [a for a in backend["added_tokens"] if a["special"]]
    for a in backend["added_tokens"]:
        if a["content"] == "[MASK]":
            a["lstrip"] = True
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(json.dumps(backend), encoding="utf-8")
    shutil.copy(spiece, folder / "spiece.model")
    return HFAlbertTokenizer.from_pretrained(str(folder))
