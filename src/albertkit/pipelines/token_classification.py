"""Token classification (NER, tagging) with Hugging Face's entity grouping strategies.

``aggregation_strategy``:
  * ``none``: one entry per word piece: ``{"entity", "score", "index", "word", "start", "end"}``;
  * ``simple``: adjacent pieces whose tags agree (B-X then I-X...) merge into ``{"entity_group", ...}``;
  * ``first`` / ``average`` / ``max``: first each *word* gets one tag (from its first piece, the
    average of its pieces' scores, or its most confident piece), then words group as in ``simple``.
A piece continues a word when no space precedes it in the text (ALBERT's SentencePiece pieces carry
their leading space; HF's fallback heuristic for tokenizers without a subword prefix).
``start``/``end`` are character offsets into the original text. Labels in ``ignore_labels`` (default
``["O"]``) are dropped.

    >>> ner = pipeline("token-classification", model="my-conll-model", aggregation_strategy="simple")  # doctest: +SKIP
    >>> ner("My name is Sarah and I live in London")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from albertkit.pipelines.base import Feature, Pipeline

__all__ = ["TokenClassificationPipeline", "AGGREGATIONS"]

AGGREGATIONS = ("none", "simple", "first", "average", "max")


def _split_tag(label: str) -> tuple[str, str]:
    """``B-PER`` -> (B, PER); ``I-PER`` -> (I, PER); a bare ``PER`` counts as inside."""
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


class TokenClassificationPipeline(Pipeline):
    task = "token-classification"

    def _sanitize(
        self, aggregation_strategy: str | None = None, ignore_labels: list[str] | None = None, **rest: Any
    ) -> dict[str, Any]:
        super()._sanitize(**rest)
        out: dict[str, Any] = {}
        if aggregation_strategy is not None:
            name = str(aggregation_strategy).lower()
            if name not in AGGREGATIONS:
                raise ValueError(
                    f"aggregation_strategy must be one of {', '.join(AGGREGATIONS)}, got {aggregation_strategy!r}"
                )
            out["aggregation_strategy"] = name
        if ignore_labels is not None:
            if isinstance(ignore_labels, str) or not all(isinstance(x, str) for x in ignore_labels):
                raise ValueError(f"ignore_labels must be a list of label names, got {ignore_labels!r}")
            out["ignore_labels"] = list(ignore_labels)
        return out

    def label(self, i: int) -> str:
        id2label = self.config.id2label or {}
        return id2label.get(int(i), f"LABEL_{int(i)}")

    def preprocess(self, item: str, index: int | None) -> list[Feature]:
        enc = self._encode(item, None, index, return_offsets_mapping=True, return_special_tokens_mask=True)
        ids = list(enc["input_ids"])
        types = list(enc.get("token_type_ids") or [0] * len(ids))
        special = [bool(x) for x in enc["special_tokens_mask"]]
        offsets = [tuple(int(x) for x in o) for o in enc["offset_mapping"]]
        return [Feature(index=0, input_ids=ids, token_type_ids=types, extra={"offsets": offsets, "special": special})]

    def _forward(self, batch: dict[str, Tensor], features: list[Feature]) -> dict[str, Tensor]:
        return {"logits": self.model(**batch).logits}  # [B, T, C]

    # -- postprocess ------------------------------------------------------------------------------
    def postprocess(
        self,
        text: str,
        features: list[Feature],
        aggregation_strategy: str = "none",
        ignore_labels: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        ignore = ["O"] if ignore_labels is None else ignore_labels
        (f,) = features
        logits = f.outputs["logits"][: len(f)].numpy().astype(np.float32)
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        scores = e / e.sum(axis=-1, keepdims=True)
        pieces = self._pieces(text, f, scores)
        if aggregation_strategy in ("none", "simple"):
            entities = [
                {
                    "entity": self.label(p["scores"].argmax()),
                    "score": float(p["scores"].max()),
                    "index": p["index"],
                    "word": p["word"],
                    "start": p["start"],
                    "end": p["end"],
                }
                for p in pieces
            ]
        else:
            entities = self._words(pieces, aggregation_strategy)
        if aggregation_strategy != "none":
            entities = self._group(entities)
        key = "entity" if aggregation_strategy == "none" else "entity_group"
        return [ent for ent in entities if ent[key] not in ignore]

    def _pieces(self, text: str, f: Feature, scores: np.ndarray) -> list[dict[str, Any]]:
        unk = self.tokenizer.unk_token_id
        tokens = self.tokenizer.convert_ids_to_tokens(f.input_ids)
        out = []
        for idx, (token_id, special) in enumerate(zip(f.input_ids, f.extra["special"])):
            if special:
                continue
            start, end = f.extra["offsets"][idx]
            word = tokens[idx]
            # No subword prefix in SentencePiece: a piece continues a word when no space precedes it.
            is_subword = start > 0 and " " not in text[start - 1 : start + 1]
            if token_id == unk:  # show the text the unknown piece covers
                word, is_subword = text[start:end], False
            out.append(
                {"word": word, "scores": scores[idx], "start": start, "end": end, "index": idx, "is_subword": is_subword}
            )
        return out

    def _words(self, pieces: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
        words: list[list[dict[str, Any]]] = []
        for p in pieces:
            if words and p["is_subword"]:
                words[-1].append(p)
            else:
                words.append([p])
        out = []
        for group in words:
            if strategy == "first":
                scores = group[0]["scores"]
            elif strategy == "max":
                scores = max(group, key=lambda p: p["scores"].max())["scores"]
            else:  # average
                scores = np.nanmean(np.stack([p["scores"] for p in group]), axis=0)
            best = int(scores.argmax())
            out.append(
                {
                    "entity": self.label(best),
                    "score": float(scores[best]),
                    "word": self._join([p["word"] for p in group]),
                    "start": group[0]["start"],
                    "end": group[-1]["end"],
                }
            )
        return out

    def _group(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        groups: list[list[dict[str, Any]]] = []
        for ent in entities:
            bi, tag = _split_tag(ent["entity"])
            if groups and bi != "B" and tag == _split_tag(groups[-1][-1]["entity"])[1]:
                groups[-1].append(ent)
            else:
                groups.append([ent])
        return [
            {
                "entity_group": g[0]["entity"].split("-", 1)[-1],
                "score": float(np.mean([e["score"] for e in g])),
                "word": self._join([e["word"] for e in g]),
                "start": g[0]["start"],
                "end": g[-1]["end"],
            }
            for g in groups
        ]

    def _join(self, tokens: list[str]) -> str:
        return self.tokenizer.convert_tokens_to_string(tokens)
