"""Record how transformers 4.x's slow AlbertTokenizer truncates pairs with ``longest_first``.

That tokenizer (like Google's ``_truncate_seq_pair``) pops one token at a time from the longer
sequence, from the second on a tie; transformers 5 has no slow tokenizer, so this runs in a
separate environment (as make_tokenization_golden.py):

    python3.11 -m venv /tmp/hf4 && /tmp/hf4/bin/pip install transformers==4.57.1 sentencepiece protobuf
    /tmp/hf4/bin/python tests/golden/make_truncation_golden.py

Writes tests/golden/truncation_slow_hf4.json:
* ``grid``: pairs of n1 and n2 one-piece words at many max_lengths (every length relation:
  first longer / shorter / equal, by less or more than the cut), as [n1, n2, max_length, kept1, kept2];
* ``glue``: real dev pairs (RTE, MRPC, QNLI, STS-B, WNLI) at max_length 128 and 64, as
  [task, row, max_length, kept1, kept2, digest of input_ids + token_type_ids].
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import tokenization_parity_data as D  # noqa: E402

DATA = HERE.parents[2] / "shared" / "data"
OUT = HERE / "truncation_slow_hf4.json"

GRID_N = (0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 20)
GRID_MAX = (4, 5, 6, 7, 8, 9, 10, 11, 13, 16, 19, 24)
GLUE_TASKS = ("RTE/dev", "MRPC/dev", "QNLI/dev", "STS-B/dev", "WNLI/dev")
GLUE_ROWS = 150  # first rows of each task


def digest(ids: list[int], types: list[int]) -> str:
    return hashlib.sha1(json.dumps([ids, types], separators=(",", ":")).encode()).hexdigest()[:16]


def main() -> None:
    import transformers
    from transformers import AlbertTokenizer

    assert not transformers.__version__.startswith("5"), "needs transformers 4.x (the slow tokenizer)"
    tok = AlbertTokenizer(str(DATA / "albert-base-v2" / "spiece.model"))
    assert not tok.is_fast

    def kept(enc: dict) -> tuple[int, int]:
        types = enc["token_type_ids"]
        return types.count(0) - 2, types.count(1) - 1

    grid = []
    for n1 in GRID_N:
        for n2 in GRID_N:
            a, b = " ".join(["alpha"] * n1), " ".join(["beta"] * n2)
            assert len(tok.tokenize(a)) == n1 and len(tok.tokenize(b)) == n2
            for m in GRID_MAX:
                enc = tok(a, b, truncation="longest_first", max_length=m, return_token_type_ids=True)
                grid.append([n1, n2, m, *kept(enc)])
    glue = []
    ex = D.glue_squad_examples(DATA)
    for task in GLUE_TASKS:
        for row, (a, b) in enumerate(ex[task][:GLUE_ROWS]):
            for m in (128, 64):
                enc = tok(a, b, truncation="longest_first", max_length=m, return_token_type_ids=True)
                glue.append([task, row, m, *kept(enc), digest(enc["input_ids"], enc["token_type_ids"])])
    out = {
        "generator": f"transformers {transformers.__version__} AlbertTokenizer (slow, sentencepiece), truncation='longest_first'",
        "grid": grid,
        "glue": glue,
    }
    OUT.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(grid)} grid rows, {len(glue)} GLUE rows", file=sys.stderr)


if __name__ == "__main__":
    main()
