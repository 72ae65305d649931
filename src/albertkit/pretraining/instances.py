"""Sentence-order-prediction instances built the way Google's ALBERT create_pretraining_data.py does.

    >>> dataset = SOPDataset(PretrainingCorpus("runs/corpus"), max_seq_length=128, seed=0, epoch=0)  # doctest: +SKIP
    >>> item = dataset[0]   # {"input_ids": int64 [T], "token_type_ids": int64 [T], "sentence_order_label": 0|1, ...}  # doctest: +SKIP

Per document (in corpus order, one ``random.Random`` stream seeded from ``(seed, epoch)``): the
target length is ``max_seq_length - 3``, or with probability ``short_seq_prob`` uniform in
``2..max_seq_length - 3``; sentences are gathered into a chunk until it reaches the target (or the
document ends); A is the first ``a_end`` sentences of the chunk (``a_end`` uniform in
``1..len(chunk)-1``), B the rest. With probability 0.5 A and B are swapped (label 1), otherwise kept
(label 0). A chunk of one sentence takes B from a random sentence onwards of a random other
document (label 1). The longer segment is then truncated one token at a time from a random end
until ``len(A) + len(B) <= max_seq_length - 3``.

Every segment is a contiguous token range of the memory-mapped corpus, so the whole index is five
compact numpy arrays, identical in every DDP rank for the same ``(seed, epoch)``. Truncation is
vectorised: how many tokens each segment loses follows from the lengths alone, and how many of
those come off the front is Binomial(r, 1/2), the same law as Google's token-by-token coin flips.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from albertkit.pretraining.corpus import PretrainingCorpus

__all__ = ["SOPDataset"]


def _truncated_lengths(len_a: np.ndarray, len_b: np.ndarray, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Final lengths after Google's truncate_seq_pair (cut the longer one; on a tie, cut B)."""
    excess = np.maximum(len_a + len_b - max_tokens, 0)
    gap = np.abs(len_a - len_b)
    first = np.minimum(excess, gap)  # cuts that only shorten the longer segment down to the other
    rest = excess - first  # then the cuts alternate, B first (tie -> B)
    a_longer = len_a > len_b
    cut_a = np.where(a_longer, first, 0) + rest // 2
    cut_b = np.where(a_longer, 0, first) + (rest + 1) // 2
    return len_a - cut_a, len_b - cut_b


class SOPDataset(Dataset):
    """Map-style dataset of ``[CLS] A [SEP] B [SEP]`` instances with a sentence-order label.

    Items are dicts: ``input_ids`` and ``token_type_ids`` (int64 numpy [T], T <= max_seq_length),
    ``sentence_order_label`` (0 = A then B as written, 1 = swapped or B from another document),
    ``index`` and ``epoch`` (what :class:`MaskingCollator` seeds its masking with).
    """

    def __init__(
        self,
        corpus: PretrainingCorpus,
        max_seq_length: int = 512,
        short_seq_prob: float = 0.1,
        seed: int = 0,
        epoch: int = 0,
    ) -> None:
        if max_seq_length < 5:
            raise ValueError(f"max_seq_length must be at least 5, got {max_seq_length}")
        if not 0.0 <= short_seq_prob <= 1.0:
            raise ValueError(f"short_seq_prob must be in [0, 1], got {short_seq_prob}")
        self.corpus = corpus
        self.max_seq_length = max_seq_length
        self.short_seq_prob = short_seq_prob
        self.seed = seed
        self.epoch = epoch
        self.cls_id = corpus.special_ids["cls"]
        self.sep_id = corpus.special_ids["sep"]
        self._build()

    def _build(self) -> None:
        max_tokens = self.max_seq_length - 3
        corpus = self.corpus
        docs = corpus.document_sentences
        docs = docs[docs[:, 1] > 0]  # empty documents cannot give a segment
        # Cumulative token counts over all sentences: token range of sentences [i, j) is
        # starts[i] .. starts[i] + (cum[j] - cum[i]) because sentences of a document are contiguous.
        cum = np.zeros(len(corpus.sentence_lengths) + 1, dtype=np.int64)
        np.cumsum(corpus.sentence_lengths, out=cum[1:])
        cum_list = cum.tolist()
        starts = corpus.sentence_starts
        rng = random.Random(f"albertkit-sop:{self.seed}:{self.epoch}")
        n_docs = len(docs)
        doc_first = docs[:, 0].tolist()
        doc_count = docs[:, 1].tolist()

        a_sent, a_end_sent, b_sent, b_end_sent, labels, random_b = [], [], [], [], [], []
        for d in range(n_docs):
            first, last = doc_first[d], doc_first[d] + doc_count[d]  # sentences [first, last)
            target = max_tokens
            if rng.random() < self.short_seq_prob:
                target = rng.randint(2, max_tokens)
            i = first
            while i < last:
                # Smallest j with tokens(i..j) >= target, else the end of the document.
                j = bisect_left(cum_list, cum_list[i] + target, i + 1, last + 1)
                j = min(j, last)  # chunk = sentences [i, j)
                n = j - i
                a_end = i + (rng.randint(1, n - 1) if n >= 2 else 1)
                if n == 1:
                    # One sentence: B from a random other document (Google tries 10 times).
                    other = d
                    for _ in range(10):
                        other = rng.randint(0, n_docs - 1)
                        if other != d:
                            break
                    o_first, o_last = doc_first[other], doc_first[other] + doc_count[other]
                    b0 = rng.randint(o_first, o_last - 1)
                    need = target - (cum_list[a_end] - cum_list[i])
                    b1 = bisect_left(cum_list, cum_list[b0] + max(need, 1), b0 + 1, o_last + 1)
                    b1 = min(b1, o_last)
                    a_sent.append(i), a_end_sent.append(a_end), b_sent.append(b0), b_end_sent.append(b1)
                    labels.append(1)
                    random_b.append(True)
                elif rng.random() < 0.5:
                    a_sent.append(a_end), a_end_sent.append(j), b_sent.append(i), b_end_sent.append(a_end)
                    labels.append(1)
                    random_b.append(False)
                else:
                    a_sent.append(i), a_end_sent.append(a_end), b_sent.append(a_end), b_end_sent.append(j)
                    labels.append(0)
                    random_b.append(False)
                i = j

        a0 = np.asarray(a_sent, dtype=np.int64)
        b0 = np.asarray(b_sent, dtype=np.int64)
        len_a = cum[np.asarray(a_end_sent, dtype=np.int64)] - cum[a0]
        len_b = cum[np.asarray(b_end_sent, dtype=np.int64)] - cum[b0]
        new_a, new_b = _truncated_lengths(len_a, len_b, max_tokens)
        np_rng = np.random.default_rng([self.seed, self.epoch, 0x50B])
        front_a = np_rng.binomial(len_a - new_a, 0.5)
        front_b = np_rng.binomial(len_b - new_b, 0.5)
        order = np_rng.permutation(len(a0))  # Google shuffles its instances too
        self.a_start = (starts[a0] + front_a)[order] if len(a0) else np.zeros(0, np.int64)
        self.a_length = new_a[order].astype(np.int32)
        self.b_start = (starts[b0] + front_b)[order] if len(b0) else np.zeros(0, np.int64)
        self.b_length = new_b[order].astype(np.int32)
        self.labels = np.asarray(labels, dtype=np.int8)[order]
        # True where B came from another document (single-sentence chunk); diagnostics and tests.
        self.order = order
        # Sentence ranges [a0, a1), [b0, b1) before truncation and shuffling (instance order[k] is item k).
        self.sentence_ranges = np.stack(
            [a0, np.asarray(a_end_sent, np.int64), b0, np.asarray(b_end_sent, np.int64)], axis=1
        ) if len(a0) else np.zeros((0, 4), np.int64)
        self.random_b = np.asarray(random_b, dtype=bool)[order]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"instance {index} out of range for {len(self)} instances")
        a = self.corpus.tokens(int(self.a_start[index]), int(self.a_length[index]))
        b = self.corpus.tokens(int(self.b_start[index]), int(self.b_length[index]))
        la, lb = len(a), len(b)
        input_ids = np.empty(la + lb + 3, dtype=np.int64)
        input_ids[0] = self.cls_id
        input_ids[1 : la + 1] = a
        input_ids[la + 1] = self.sep_id
        input_ids[la + 2 : la + 2 + lb] = b
        input_ids[-1] = self.sep_id
        token_type_ids = np.zeros_like(input_ids)
        token_type_ids[la + 2 :] = 1
        return {
            "input_ids": input_ids,
            "token_type_ids": token_type_ids,
            "sentence_order_label": int(self.labels[index]),
            "index": index,
            "epoch": self.epoch,
        }
