"""Shared helpers for the pipeline tests: random-weight transformers checkpoints with the real vocab,
and varied inputs from ../shared/data. (No tests here besides the helpers' own sanity check.)"""

from __future__ import annotations

import csv
import json
import math
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import require_reference

# Small enough for millisecond forwards, but the real 30k vocab (embedding 8 -> 240k params).
SMALL = dict(
    vocab_size=30000,
    embedding_size=8,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=512,
    hidden_act="gelu_new",
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    classifier_dropout_prob=0.0,
)
NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "MISC"]


def hf_checkpoint(folder: Path, spiece: Path, kind: str, seed: int = 0, **overrides: Any) -> Path:
    """Save a random transformers ``AlbertFor<kind>`` + tokenizer files into ``folder``.

    Weights are scaled up (std 0.5 instead of 0.02) so that scores are far from uniform and
    rankings are decisive, which makes token/label comparisons meaningful.
    """
    import torch

    transformers = require_reference("transformers")

    cfg = transformers.AlbertConfig(**{**SMALL, **overrides})
    torch.manual_seed(seed)
    model = getattr(transformers, f"Albert{kind}")(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                continue
            p.normal_(0.0, 0.5 if p.dim() > 1 else 0.1)
    model.save_pretrained(folder)
    shutil.copy(spiece, folder / "spiece.model")
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": True, "keep_accents": False, "remove_space": True, "model_max_length": 512})
    )
    return folder


def hf_tokenizer(folder: Path):
    transformers = require_reference("transformers")

    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    # transformers 5 dropped token_type_ids from ALBERT's model inputs, so a pair's second segment
    # would reach the model as segment 0; ALBERT was trained with segment ids (and transformers 4
    # sent them), so the reference gets them back.
    tok.model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    return tok


def hf_pipeline(task: str, folder: Path, **kwargs: Any):
    transformers = require_reference("transformers")
    transformers.logging.set_verbosity_error()
    return transformers.pipeline(task, model=str(folder), tokenizer=hf_tokenizer(folder), device="cpu", **kwargs)


def corpus_sentences(shared_data: Path, n: int, seed: int = 0, max_words: int = 40) -> list[str]:
    """``n`` varied sentences: GLUE SST-2 / CoLA / MRPC and the pretraining corpus."""
    rng = random.Random(seed)
    pool: list[str] = []
    glue = shared_data / "glue"
    with open(glue / "SST-2" / "dev.tsv", encoding="utf-8") as fh:
        pool += [r["sentence"] for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
    with open(glue / "CoLA" / "dev.tsv", encoding="utf-8") as fh:
        pool += [row[3] for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if len(row) > 3]
    with open(glue / "MRPC" / "dev.tsv", encoding="utf-8-sig") as fh:
        for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            pool += [r["#1 String"], r["#2 String"]]
    corpus = sorted((shared_data / "corpus").rglob("*.txt"))
    for path in rng.sample(corpus, min(8, len(corpus))):
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = [ln.strip() for _, ln in zip(range(4000), fh)]
        pool += [ln for ln in lines if 3 <= len(ln.split()) <= max_words]
    pool = [s for s in pool if s.strip() and len(s.split()) <= max_words]
    return rng.sample(pool, n)


def mask_sentences(sentences: list[str], seed: int = 0, mask: str = "[MASK]") -> list[str]:
    """Replace one word (sometimes two) of each sentence by ``[MASK]``."""
    rng = random.Random(seed)
    out = []
    for s in sentences:
        words = s.split()
        k = 2 if len(words) > 6 and rng.random() < 0.2 else 1
        # Only plain words: "[MASK]," tokenizes differently in transformers' fast tokenizer (no "▁"
        # before the punctuation) and its slow one (albertkit follows the slow one).
        plain = [i for i, w in enumerate(words) if w.isalpha()] or list(range(len(words)))
        for i in rng.sample(plain, min(k, len(plain))):
            words[i] = mask
        out.append(" ".join(words))
    return out


def squad_examples(shared_data: Path, n: int, seed: int = 0, min_context_chars: int = 0) -> list[dict[str, str]]:
    data = json.loads((shared_data / "squad" / "dev-v1.1.json").read_text(encoding="utf-8"))["data"]
    items = [
        {"question": qa["question"], "context": para["context"]}
        for article in data
        for para in article["paragraphs"]
        for qa in para["qas"]
        if len(para["context"]) >= min_context_chars
    ]
    return random.Random(seed).sample(items, n)


def assert_close(a: float, b: float, tol: float = 1e-5, what: str = "") -> None:
    assert math.isclose(float(a), float(b), abs_tol=tol), f"{what}: {a} != {b}"


def test_helpers_give_varied_inputs(shared_data):
    sents = corpus_sentences(shared_data, 50)
    assert len(set(sents)) == 50
    assert all(s.count("[MASK]") >= 1 for s in mask_sentences(sents))
    long = squad_examples(shared_data, 5, min_context_chars=2000)
    assert all(len(x["context"]) >= 2000 for x in long)


@pytest.fixture
def mlm_folder(tmp_path_factory, spiece_path):
    return hf_checkpoint(tmp_path_factory.mktemp("mlm"), spiece_path, "ForMaskedLM")
