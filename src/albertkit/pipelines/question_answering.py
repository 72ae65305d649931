"""Extractive question answering: the answer text and its character span in the original context.

A context longer than the window (``max_seq_len``, default min(384, model limit)) is split into
overlapping windows ``doc_stride`` tokens apart (default min(max_seq_len // 2, 128)). In each window
start and end scores are softmaxed over the context tokens (plus ``[CLS]``), span scores are
start x end for spans of at most ``max_answer_len`` tokens, and the n best spans of all windows are
merged (equal answer texts add up their scores) - the decoding of Hugging Face's (4.x) pipeline.
``handle_impossible_answer`` adds the no-answer candidate ``{"answer": "", "start": 0, "end": 0}``
scored by the smallest ``[CLS]`` x ``[CLS]`` probability over the windows (SQuAD 2.0 models).

``align_to_words`` (default) widens a span to whole words as transformers 4's fast tokenizer
delimits them: a word starts at a "▁" piece, and each of the SentencePiece model's user-defined
symbols (ALBERT's ``( ) " - . – £ €``) is a word of its own, so ``"Illinois."`` is the two words
``Illinois`` and ``.``. Spans start at their first visible character (albertkit's offsets leave out
the space before a word, as transformers 5 does); answers whose texts are equal ignoring case are
merged, where - as in transformers 4, whose spans carry that space - a span preceded by whitespace
differs from one that is not (``"The"`` at the start of the context is not ``" the"``).

    >>> qa = pipeline("question-answering", model="my-squad-model")  # doctest: +SKIP
    >>> qa(question="Who wrote it?", context="It was written by Jane Austen in 1813.")  # doctest: +SKIP
    {'score': 0.91, 'start': 18, 'end': 29, 'answer': 'Jane Austen'}
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
from torch import Tensor

from albertkit.pipelines.base import Feature, Pipeline, PipelineInputError, describe_input

__all__ = ["QuestionAnsweringPipeline", "best_spans", "user_defined_ids"]

def user_defined_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of the tokenizer's user-defined symbols (ALBERT: ``( ) " - . – £ €``), as
    ``AlbertTokenizer.user_defined_ids`` lists them; a tokenizer without such a list has none.

        >>> sorted(user_defined_ids(AlbertTokenizer.from_pretrained("albert-base-v2")))  # doctest: +SKIP
        [5, 6, 7, 8, 9, 10, 11, 12]
    """
    return frozenset(getattr(tokenizer, "user_defined_ids", ()))


def best_spans(
    start: np.ndarray, end: np.ndarray, allowed: np.ndarray, top_k: int, max_answer_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``top_k`` best (start, end) token spans of one window, by start x end probability.

    ``start``/``end`` [T] are probabilities, ``allowed`` [T] marks tokens an answer may touch.
    Returns (starts, ends, scores), best first; spans touching a forbidden token are dropped
    *after* the top-k cut, as HF does.
    """
    scores = np.triu(np.outer(start, end))  # start <= end
    scores = np.tril(scores, max_answer_len - 1)  # end - start < max_answer_len
    flat = scores.ravel()
    if top_k == 1:
        order = np.array([np.argmax(flat)])
    elif flat.size < top_k:
        order = np.argsort(-flat)
    else:
        part = np.argpartition(-flat, top_k)[:top_k]
        order = part[np.argsort(-flat[part])]
    starts, ends = np.unravel_index(order, scores.shape)
    keep = allowed[starts] & allowed[ends]
    starts, ends = starts[keep], ends[keep]
    return starts, ends, scores[starts, ends]


class QuestionAnsweringPipeline(Pipeline):
    task = "question-answering"
    preprocess_params = ("doc_stride", "max_seq_len")

    def _sanitize(
        self,
        top_k: int | None = None,
        doc_stride: int | None = None,
        max_answer_len: int | None = None,
        max_seq_len: int | None = None,
        handle_impossible_answer: bool | None = None,
        align_to_words: bool | None = None,
        **rest: Any,
    ) -> dict[str, Any]:
        super()._sanitize(**rest)
        out: dict[str, Any] = {}
        for name, value in (
            ("top_k", top_k),
            ("doc_stride", doc_stride),
            ("max_answer_len", max_answer_len),
            ("max_seq_len", max_seq_len),
        ):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            out[name] = value
        if max_seq_len is not None and max_seq_len > self.max_length:
            raise ValueError(f"max_seq_len ({max_seq_len}) exceeds the model's limit of {self.max_length} tokens")
        if handle_impossible_answer is not None:
            out["handle_impossible_answer"] = bool(handle_impossible_answer)
        if align_to_words is not None:
            out["align_to_words"] = bool(align_to_words)
        return out

    # -- inputs: {"question", "context"} dicts, or question=..., context=... ------------------------
    def _check_inputs(self, inputs: Any) -> tuple[bool, list[Any]]:
        if isinstance(inputs, dict):
            return True, [self._check_item(inputs, None)]
        if isinstance(inputs, (list, tuple)) and inputs:
            return False, [self._check_item(x, i) for i, x in enumerate(inputs)]
        raise PipelineInputError(
            'question-answering takes {"question": ..., "context": ...} (or a list of them), '
            f"or question=... and context=..., got {type(inputs).__name__}"
        )

    def _check_item(self, item: Any, index: int | None) -> tuple[str, str]:
        where = "input" if index is None else f"input #{index}"
        if not isinstance(item, dict) or "question" not in item or "context" not in item:
            raise PipelineInputError(f'{where}: expected a dict with keys "question" and "context", got {item!r:.80}')
        return self._check_text(item["question"], index, "question"), self._check_text(item["context"], index, "context")

    def __call__(self, inputs: Any = None, *, question: Any = None, context: Any = None, **params: Any) -> Any:
        """``qa(question=q, context=c)``, ``qa({"question": q, "context": c})`` or a list of dicts."""
        if inputs is None:
            if question is None or context is None:
                raise PipelineInputError("question-answering needs both question= and context=")
            if isinstance(question, list):
                contexts = context if isinstance(context, list) else [context] * len(question)
                if len(contexts) != len(question):
                    raise PipelineInputError(
                        f"{len(question)} questions but {len(contexts)} contexts; give one context or one per question"
                    )
                inputs = [{"question": q, "context": c} for q, c in zip(question, contexts)]
            else:
                inputs = {"question": question, "context": context}
        out = super().__call__(inputs, **params)
        # HF: a one-element list answers like a single question.
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            return out[0]
        return out

    # -- steps ------------------------------------------------------------------------------------
    def _window(self, max_seq_len: int | None) -> int:
        return min(384, self.max_length) if max_seq_len is None else max_seq_len

    def preprocess(
        self, item: tuple[str, str], index: int | None, doc_stride: int | None = None, max_seq_len: int | None = None
    ) -> list[Feature]:
        question, context = item
        window = self._window(max_seq_len)
        stride = min(window // 2, 128) if doc_stride is None else doc_stride
        label = describe_input(index, question)
        if stride >= window:
            raise ValueError(f"doc_stride ({stride}) must be smaller than max_seq_len ({window})")
        n_question = len(self.tokenizer(question, add_special_tokens=False)["input_ids"])
        room = window - n_question - 3  # [CLS] question [SEP] context [SEP]
        if room <= stride:
            raise PipelineInputError(
                f"{label}: the question takes {n_question} tokens, leaving {max(room, 0)} of the {window}-token "
                f"window for the context, not more than doc_stride ({stride}); shorten the question or "
                f"raise max_seq_len / lower doc_stride"
            )
        enc = self.tokenizer(
            question,
            context,
            truncation="only_second",
            max_length=window,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_token_type_ids=True,
        )
        cls_id = self.tokenizer.cls_token_id
        features = []
        for w in range(len(enc["input_ids"])):
            ids = list(enc["input_ids"][w])
            seq_ids = list(enc.sequence_ids(w))
            # Answers come from the context (sequence 1) or [CLS] (the no-answer slot).
            allowed = np.array([s == 1 or t == cls_id for s, t in zip(seq_ids, ids)])
            features.append(
                Feature(
                    index=0,
                    input_ids=ids,
                    token_type_ids=list(enc["token_type_ids"][w]),
                    extra={
                        "allowed": allowed,
                        **self._spans(context, ids, seq_ids, list(enc.word_ids(w)), enc["offset_mapping"][w]),
                    },
                )
            )
        return features

    @cached_property
    def _symbol_ids(self) -> frozenset[int]:
        return user_defined_ids(self.tokenizer)

    def _spans(
        self, context: str, ids: list[int], seq_ids: list[int | None], word_ids: list[int | None], offsets: Any
    ) -> dict[str, list[int]]:
        """Per token of one window: where a span starting / ending there begins and ends in ``context``.

        ``start`` is the first visible character, ``end`` the end of the token as transformers 4
        reports it (a lone "▁" piece is the whitespace character before the next one), ``key`` where
        transformers 4's span starts (one whitespace character before a "▁" piece included) - it
        decides which answers are the same text. ``first``/``last`` are the token bounds of the token's word
        (-1 outside the context): a word starts at a new albertkit word, at a user-defined symbol,
        and right after one.
        """
        n = len(ids)
        pieces = self.tokenizer.convert_ids_to_tokens(ids)
        symbols = self._symbol_ids
        start, end, key = [0] * n, [0] * n, [0] * n
        first, last = [-1] * n, [-1] * n
        word_start = -1
        for t in range(n):
            lo, hi = (int(x) for x in offsets[t])
            start[t], end[t], key[t] = lo, hi, lo
            if seq_ids[t] != 1:
                word_start = -1
                continue
            if pieces[t].startswith("▁") and lo > 0 and context[lo - 1].isspace():
                # transformers 4 puts "▁" on the whitespace character before the word (the last of a run,
                # which its normaliser collapses); albertkit puts a lone "▁" on the next character.
                key[t] = lo - 1
                if pieces[t] == "▁":
                    end[t] = lo
            if (
                word_start < 0
                or word_ids[t] != word_ids[t - 1]
                or ids[t] in symbols
                or ids[t - 1] in symbols
            ):
                word_start = t
            first[t] = word_start
        for t in range(n - 1, -1, -1):
            if first[t] >= 0:
                last[t] = last[t + 1] if t + 1 < n and first[t + 1] == first[t] else t
        return {"start": start, "end": end, "key": key, "first": first, "last": last}

    def _forward(self, batch: dict[str, Tensor], features: list[Feature]) -> dict[str, Tensor]:
        out = self.model(**batch)
        return {"start_logits": out.start_logits, "end_logits": out.end_logits}

    def postprocess(
        self,
        item: tuple[str, str],
        features: list[Feature],
        top_k: int = 1,
        max_answer_len: int = 15,
        handle_impossible_answer: bool = False,
        align_to_words: bool = True,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        _, context = item
        null_score = 1_000_000.0
        answers: list[dict[str, Any]] = []
        # Some candidates vanish (forbidden tokens, merged duplicates): decode more than asked.
        pre_k = top_k * 2 + 10 if align_to_words else top_k
        for f in features:
            n = len(f)
            allowed = f.extra["allowed"]
            start = self._probs(f.outputs["start_logits"][:n].numpy(), allowed)
            end = self._probs(f.outputs["end_logits"][:n].numpy(), allowed)
            if handle_impossible_answer:
                null_score = min(null_score, float(start[0] * end[0]))
            start[0] = end[0] = 0.0
            # [CLS] stays allowed with probability 0, as in HF: a window whose context holds fewer than
            # pre_k spans yields zero-score spans rather than nothing.
            for s, e, score in zip(*best_spans(start, end, allowed, pre_k, max_answer_len)):
                lo, hi, key = self._char_span(f.extra, int(s), int(e), align_to_words)
                text = context[key:hi].lower()
                same = next((a for a in answers if a["key"] == text), None)
                if same is not None:
                    same["score"] += float(score)
                else:
                    answers.append({"score": float(score), "start": lo, "end": hi, "answer": context[lo:hi], "key": text})
        for a in answers:
            del a["key"]
        if handle_impossible_answer:
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers

    @staticmethod
    def _probs(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        x = np.where(allowed, logits.astype(np.float32), np.float32(-10000.0))
        e = np.exp(x - x.max())
        return e / e.sum()

    @staticmethod
    def _char_span(spans: dict[str, list[int]], s: int, e: int, align_to_words: bool) -> tuple[int, int, int]:
        """(start, end, key start) in the context of the token span s..e (see :meth:`_spans`)."""
        first, last = spans["first"], spans["last"]
        # Whole words - unless an end is not a context token ([CLS]), where transformers 4 falls back
        # to the tokens' own offsets.
        if align_to_words and first[s] >= 0 and first[e] >= 0:
            s, e = first[s], last[e]
        lo, hi, key = spans["start"][s], spans["end"][e], spans["key"][s]
        if lo >= hi:  # only whitespace (a lone "▁"): the whitespace itself, as transformers 4 answers
            lo = key
        return lo, hi, key
