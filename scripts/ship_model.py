"""Copy a pretraining run's final model into the package as a shipped model.

    python scripts/ship_model.py runs/albert-mini-en src/albertkit/models/albert-mini-en

Writes the HF-layout model (AlbertForPreTraining weights: MLM and SOP heads) and the tokenizer;
the model card (README.md in the target) is kept.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from albertkit import AlbertForPreTraining, AlbertTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="pretraining output folder (holds model/)")
    parser.add_argument("target", type=Path, help="package folder to write")
    parser.add_argument("--checkpoint", help="ship this checkpoint folder's model instead of RUN/model")
    parser.add_argument("--tokenizer", help="tokenizer folder or spiece.model (default: the model folder's)")
    args = parser.parse_args()
    source = Path(args.checkpoint) if args.checkpoint else args.run / "model"
    model = AlbertForPreTraining.from_pretrained(source)
    tokenizer = AlbertTokenizer.from_pretrained(args.tokenizer or source)
    model.save_pretrained(args.target)
    tokenizer.save_pretrained(args.target)
    size = sum(p.stat().st_size for p in args.target.iterdir() if p.is_file())
    print(json.dumps({"source": str(source), "target": str(args.target), "bytes": size, "parameters": model.num_parameters()}))


if __name__ == "__main__":
    main()
