"""Held-out [MASK] accuracy of a model folder, scored by transformers' AlbertForMaskedLM (issue #14).

    python scripts/heldout_mask_accuracy.py src/albertkit/models/albert-mini-en runs/corpus --output m.json

The held-out documents of a prepared corpus are cut into the same SOP instances as
``albertkit evaluate-pretraining`` (seed 1); 15% of the pieces of each (at most 20) are chosen as
single pieces and *all* of them replaced by [MASK] (no 10% random / 10% kept). transformers'
model sees the whole sequence; accuracy and loss are taken at the masked positions. The [MASK] id
comes from transformers' tokenizer of the model folder, the piece ids from albertkit's tokenizer,
whose ids match transformers' slow tokenizer (tests/test_tokenization_parity.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="model folder (HF layout)")
    parser.add_argument("corpus", type=Path, help="prepared corpus folder (albertkit pretrain's OUTPUT/corpus)")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--max-instances", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", type=Path, help="also write the result to this JSON file")
    args = parser.parse_args()

    import transformers

    from albertkit.pretraining import MaskingCollator, PretrainingCorpus, SOPDataset
    from albertkit.tokenization import AlbertTokenizer
    from albertkit.utils import atomic_write_text

    mask_id = transformers.AutoTokenizer.from_pretrained(str(args.model)).mask_token_id
    model = transformers.AlbertForMaskedLM.from_pretrained(str(args.model)).eval()
    tok = AlbertTokenizer.from_pretrained(str(args.model))
    data = SOPDataset(PretrainingCorpus(args.corpus, "heldout"), args.max_seq_length, 0.1, seed=args.seed, epoch=0)
    collator = MaskingCollator(tok, 0.15, 20, 1, seed=args.seed, whole_word=False)
    n = min(args.max_instances, len(data))
    loss = correct = count = 0.0
    with torch.no_grad():
        for start in range(0, n, args.batch_size):
            batch = collator([data[i] for i in range(start, min(n, start + args.batch_size))])
            labels, positions = batch["masked_lm_labels"], batch["masked_lm_positions"]
            valid = labels != -100
            ids = batch["input_ids"].clone()
            rows = torch.arange(len(ids))[:, None].expand_as(positions)
            ids[rows[valid], positions[valid]] = mask_id  # every chosen piece shown as [MASK]
            logits = model(input_ids=ids, attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"]).logits
            picked = logits[rows[valid], positions[valid]].float()
            target = labels[valid]
            loss += float(torch.nn.functional.cross_entropy(picked, target, reduction="sum"))
            correct += float((picked.argmax(-1) == target).sum())
            count += float(valid.sum())
    result = {
        "model": str(args.model),
        "heldout_instances": n,
        "masked_pieces": int(count),
        "mask_accuracy": correct / count,
        "mask_loss": loss / count,
        "scored_by": f"transformers {transformers.__version__} AlbertForMaskedLM",
    }
    text = json.dumps(result, indent=2)
    if args.output:
        atomic_write_text(args.output, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
