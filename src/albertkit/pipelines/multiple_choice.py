"""Multiple choice (RACE, SWAG, COPA style): which of several endings fits a question or context.

Each choice is encoded as the pair ``[CLS] question [SEP] choice [SEP]`` and scored by the model's
multiple-choice head; scores are the softmax over the choices of one input. Choices do not see
each other, so every (question, choice) pair is an independent row: pairs of all inputs are
batched together, sorted by length.

    >>> choose = pipeline("multiple-choice", model="my-race-model")  # doctest: +SKIP
    >>> choose({"question": "The sky is", "choices": ["blue.", "a fish."]})  # doctest: +SKIP
    [{'index': 0, 'choice': 'blue.', 'score': 0.97}, {'index': 1, 'choice': 'a fish.', 'score': 0.03}]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from albertkit.pipelines.base import Feature, Pipeline, PipelineInputError

__all__ = ["MultipleChoicePipeline"]


class MultipleChoicePipeline(Pipeline):
    task = "multiple-choice"

    def _sanitize(self, top_k: int | None = None, **rest: Any) -> dict[str, Any]:
        super()._sanitize(**rest)
        if top_k is None:
            return {}
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        return {"top_k": top_k}

    def _check_inputs(self, inputs: Any) -> tuple[bool, list[Any]]:
        if isinstance(inputs, dict):
            return True, [self._check_item(inputs, None)]
        if isinstance(inputs, (list, tuple)) and inputs:
            return False, [self._check_item(x, i) for i, x in enumerate(inputs)]
        raise PipelineInputError(
            f'multiple-choice takes {{"question": ..., "choices": [...]}} or a list of them, got {type(inputs).__name__}'
        )

    def _check_item(self, item: Any, index: int | None) -> tuple[str, list[str]]:
        where = "input" if index is None else f"input #{index}"
        if not isinstance(item, dict) or "question" not in item or "choices" not in item:
            raise PipelineInputError(f'{where}: expected a dict with keys "question" and "choices", got {item!r:.80}')
        choices = item["choices"]
        if isinstance(choices, str) or not isinstance(choices, (list, tuple)) or len(choices) < 2:
            raise PipelineInputError(f"{where}: choices must be a list of at least two strings, got {choices!r:.80}")
        question = self._check_text(item["question"], index, "question")
        return question, [self._check_text(c, index, f"choice {k}") for k, c in enumerate(choices)]

    def preprocess(self, item: tuple[str, list[str]], index: int | None) -> list[Feature]:
        question, choices = item
        features = []
        for k, choice in enumerate(choices):
            enc = self._encode(question, choice, index, display=f"{question} || {choice}")
            ids = list(enc["input_ids"])
            features.append(
                Feature(index=0, input_ids=ids, token_type_ids=list(enc["token_type_ids"]), extra={"choice": k})
            )
        return features

    def _forward(self, batch: dict[str, Tensor], features: list[Feature]) -> dict[str, Tensor]:
        # Each row is its own one-choice question: [B, 1, T] -> logits [B, 1].
        inputs = {k: v.unsqueeze(1) for k, v in batch.items()}
        return {"logit": self.model(**inputs).logits[:, 0]}

    def postprocess(self, item: tuple[str, list[str]], features: list[Feature], top_k: int | None = None) -> list[dict]:
        _, choices = item
        logits = np.array([float(f.outputs["logit"]) for f in features], dtype=np.float32)
        e = np.exp(logits - logits.max())
        probs = e / e.sum()
        ranked = sorted(
            ({"index": k, "choice": choices[k], "score": float(p)} for k, p in enumerate(probs)),
            key=lambda d: d["score"],
            reverse=True,
        )
        return ranked if top_k is None else ranked[:top_k]
