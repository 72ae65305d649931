"""Text classification of one text or a pair, labels from ``config.id2label``, as Hugging Face does it.

Without ``top_k`` each input gives its best ``{"label", "score"}`` (a one-string call wraps it in a
list, as HF); ``top_k=k`` gives the k best, ``top_k=None`` all labels, sorted by score.
``function_to_apply`` is softmax for several labels, sigmoid for one label or multi-label models,
none for regression, unless given.

    >>> classify = pipeline("text-classification", model="my-sst2-model")  # doctest: +SKIP
    >>> classify("A gripping film.")  # doctest: +SKIP
    [{'label': 'positive', 'score': 0.98}]
    >>> classify({"text": "A man plays.", "text_pair": "Someone plays."}, top_k=None)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from albertkit.pipelines.base import Feature, Pipeline, PipelineInputError

__all__ = ["TextClassificationPipeline", "FUNCTIONS"]

FUNCTIONS = ("softmax", "sigmoid", "none")
_UNSET: Any = object()


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class TextClassificationPipeline(Pipeline):
    task = "text-classification"

    def _sanitize(self, top_k: Any = _UNSET, function_to_apply: str | None = None, **rest: Any) -> dict[str, Any]:
        super()._sanitize(**rest)
        out: dict[str, Any] = {}
        if top_k is not _UNSET:
            if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
                raise ValueError(f"top_k must be a positive integer or None (all labels), got {top_k!r}")
            out["top_k"] = top_k
        if function_to_apply is not None:
            name = str(function_to_apply).lower()
            if name not in FUNCTIONS:
                raise ValueError(f"function_to_apply must be one of {', '.join(FUNCTIONS)}, got {function_to_apply!r}")
            out["function_to_apply"] = name
        return out

    # -- inputs: a text, a {"text", "text_pair"} dict, or a list of those ---------------------------
    def _check_inputs(self, inputs: Any) -> tuple[bool, list[Any]]:
        if isinstance(inputs, (str, dict)):
            return True, [self._check_item(inputs, None)]
        if isinstance(inputs, (list, tuple)) and inputs:
            # HF accepts [[text, pair]] (one pair as a nested list).
            if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)) and len(inputs[0]) == 2:
                return True, [self._check_item({"text": inputs[0][0], "text_pair": inputs[0][1]}, None)]
            return False, [self._check_item(x, i) for i, x in enumerate(inputs)]
        return super()._check_inputs(inputs)

    def _check_item(self, item: Any, index: int | None) -> tuple[str, str | None]:
        if isinstance(item, dict):
            unknown = set(item) - {"text", "text_pair"}
            if "text" not in item or unknown:
                where = "input" if index is None else f"input #{index}"
                raise PipelineInputError(
                    f'{where}: a pair must be a dict with keys "text" and "text_pair", got keys {sorted(item)}'
                )
            pair = item.get("text_pair")
            return self._check_text(item["text"], index), None if pair is None else self._check_text(pair, index, "text_pair")
        if isinstance(item, (list, tuple)):
            where = "input" if index is None else f"input #{index}"
            raise PipelineInputError(
                f'{where}: to classify a text pair pass {{"text": ..., "text_pair": ...}}, not a {type(item).__name__}'
            )
        return self._check_text(item, index), None

    def preprocess(self, item: tuple[str, str | None], index: int | None) -> list[Feature]:
        text, pair = item
        enc = self._encode(text, pair, index, display=text if pair is None else f"{text} || {pair}")
        ids = list(enc["input_ids"])
        types = list(enc.get("token_type_ids") or [0] * len(ids))
        return [Feature(index=0, input_ids=ids, token_type_ids=types)]

    def _forward(self, batch: dict[str, Tensor], features: list[Feature]) -> dict[str, Tensor]:
        return {"logits": self.model(**batch).logits}

    def _default_function(self) -> str:
        cfg = self.config
        if cfg.problem_type == "regression":
            return "none"
        if cfg.problem_type == "multi_label_classification" or cfg.num_labels == 1:
            return "sigmoid"
        return "softmax"

    def label(self, i: int) -> str:
        id2label = self.config.id2label or {}
        return id2label.get(i, f"LABEL_{i}")

    def postprocess(
        self, item: Any, features: list[Feature], top_k: Any = _UNSET, function_to_apply: str | None = None
    ) -> Any:
        (f,) = features
        logits = f.outputs["logits"].numpy().astype(np.float32)
        fn = function_to_apply or self._default_function()
        if fn == "softmax":
            scores = _softmax(logits)
        elif fn == "sigmoid":
            scores = 1.0 / (1.0 + np.exp(-logits))
        else:
            scores = logits
        if top_k is _UNSET:
            best = int(scores.argmax())
            return {"label": self.label(best), "score": float(scores[best])}
        ranked = sorted(
            ({"label": self.label(i), "score": float(s)} for i, s in enumerate(scores)),
            key=lambda d: d["score"],
            reverse=True,
        )
        return ranked if top_k is None else ranked[:top_k]

    def __call__(self, inputs: Any, **params: Any) -> Any:
        out = super().__call__(inputs, **params)
        # HF: one plain string without top_k still returns a list holding the one best label.
        if isinstance(inputs, str) and "top_k" not in params and "top_k" not in self.defaults:
            return [out]
        return out
