"""Record what transformers 4.x's slow (SentencePiece) AlbertTokenizer produces, as golden values.

transformers 5 removed the slow tokenizer, so this runs in a separate environment with exactly
transformers 4.57.1 (D.GOLDEN_TRANSFORMERS; the script refuses any other version, and
tests/test_references.py checks that the golden file records it):

    python3.11 -m venv /tmp/hf4 && /tmp/hf4/bin/pip install transformers==4.57.1 sentencepiece protobuf
    /tmp/hf4/bin/python tests/golden/make_tokenization_golden.py [--full]

Writes tests/golden/tokenization_slow_hf4.json: full rows for the hard cases, a digest per row for the
default-run sample, and (with --full) one digest per corpus file / GLUE-SQuAD file over every line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import tokenization_parity_data as D  # noqa: E402

DATA = HERE.parents[2] / "shared" / "data"
OUT = HERE / "tokenization_slow_hf4.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="also digest every line of every file (minutes)")
    args = ap.parse_args()
    import transformers
    from transformers import AlbertTokenizer

    if transformers.__version__ != D.GOLDEN_TRANSFORMERS:
        sys.exit(f"make_tokenization_golden.py: needs transformers=={D.GOLDEN_TRANSFORMERS} (the slow tokenizer), "
                 f"found {transformers.__version__}; see the module docstring")
    tok = AlbertTokenizer(str(DATA / "albert-base-v2" / "spiece.model"))
    assert type(tok).__name__ == "AlbertTokenizer" and not tok.is_fast

    def row(x):
        enc = tok(x[0], x[1], return_special_tokens_mask=True) if isinstance(x, tuple) else tok(x, return_special_tokens_mask=True)
        return {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask")}

    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    out = {
        "generator": f"transformers {transformers.__version__} AlbertTokenizer (slow, sentencepiece), spiece.model of shared/data/albert-base-v2",
        "hard_cases": [{"input": list(x) if isinstance(x, tuple) else x, **row(x)} for x in D.HARD_CASES],
        "hard_cases_tokens": [tok.tokenize(x) for x in D.HARD_CASES if isinstance(x, str)],
    }
    corpus = D.corpus_sample(DATA / "corpus")
    out["corpus_sample"] = [[f, i, D.row_digest(row(line))] for f, i, line in corpus]
    ex = D.glue_squad_examples(DATA)
    out["glue_squad_sample"] = {name: [D.row_digest(row(x)) for x in items[:: D.PAIR_STEP_SAMPLE]] for name, items in ex.items()}
    if args.full:
        t0 = time.time()
        files = {}
        for path in D.corpus_files(DATA / "corpus"):
            files[str(path.relative_to(DATA / "corpus"))] = D.rows_digest([D.row_digest(row(l)) for l in D.file_lines(path)])
        out["corpus_full"] = files
        out["glue_squad_full"] = {name: D.rows_digest([D.row_digest(row(x)) for x in items]) for name, items in ex.items()}
        print(f"full: {time.time() - t0:.0f}s", file=sys.stderr)
    else:
        for key in ("corpus_full", "glue_squad_full"):
            if key in old:
                out[key] = old[key]
    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
