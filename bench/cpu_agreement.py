"""Agreement of every fast path with fp32, on this CPU class (one row of issue 11's closing table).

    PYTHONPATH=src python bench/cpu_agreement.py                        # the class of this CPU
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ALBERTKIT_CPU_CAPABILITY=avx2 \
        PYTHONPATH=src python bench/cpu_agreement.py                    # forced down to AVX2

Prints the class, what ``auto`` picks, the fp32 max abs difference to transformers at albert-base
width (12 real sentences, padded), each path's minimum token cosine at base width, and fill-mask
top-1 agreement on 200 real corpus sentences with the shipped (trained) albert-mini-en. The same
measurements, as bounds, are the tests in tests/test_cpu_paths.py.
"""

from __future__ import annotations

import copy
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    warnings.simplefilter("ignore")
    import transformers

    from albertkit import AlbertConfig, AlbertModel, AlbertTokenizer, pipeline
    from albertkit.cpu import cpu_capability
    from albertkit.fast import auto_mode, optimize
    from test_cpu_paths import real_sentences

    shared = REPO.parent / "shared" / "data"
    cap = cpu_capability()
    print(f"class {cap.describe()}; torch dispatch {torch.backends.cpu.get_cpu_capability()}; auto -> {auto_mode()}")
    transformers.logging.set_verbosity_error()
    cfg = AlbertConfig.from_name("albert-base-v2")
    torch.manual_seed(0)
    hf = transformers.AlbertModel(transformers.AlbertConfig(**cfg.to_dict())).eval()
    ours = AlbertModel(cfg)
    ours.load_state_dict(hf.state_dict(), strict=False)
    texts = [s.replace("[MASK]", "the") for s in real_sentences(shared / "corpus", 12, seed=1)]
    enc = AlbertTokenizer(str(shared / "albert-base-v2" / "spiece.model"))(texts, padding=True, return_tensors="pt")
    b = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    keep = b["attention_mask"].bool()
    with torch.inference_mode():
        ref = hf(**b).last_hidden_state
        for mode in ("fp32", "bf16", "int8"):
            got = optimize(copy.deepcopy(ours), mode)(**b).last_hidden_state.float()
            cos = F.cosine_similarity(got[keep], ref[keep], dim=-1).min()
            print(f"base width {mode}: max |diff| vs transformers {float((got - ref)[keep].abs().max()):.2e}, min token cosine {float(cos):.5f}")
    sentences = real_sentences(shared / "corpus", 200)
    base = [o[0]["token"] for o in pipeline("fill-mask", model="albert-mini-en", progress=False, top_k=1)(sentences)]
    for mode in ("bf16", "int8", "onnx-int8"):
        got = [o[0]["token"] for o in pipeline("fill-mask", model="albert-mini-en", progress=False, top_k=1, fast=mode)(sentences)]
        print(f"fill-mask {mode}: top-1 identical to fp32 on {sum(x == y for x, y in zip(base, got)) / len(base):.1%} of {len(base)}")


if __name__ == "__main__":
    main()
