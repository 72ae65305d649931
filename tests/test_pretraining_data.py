"""Pretraining data path on real text slices and the real albert-base-v2 spiece.model.

References: Google's create_pretraining_data.py (ALBERT) transcribed literally below for the SOP
chunking and truncation; the masking statistics are checked against their definitions
(p(n) = 6/11, 3/11, 2/11; 15% capped; 80/10/10) over many samples with ~4-sigma tolerances.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from albertkit.pretraining import corpus as corpus_mod
from albertkit.pretraining.corpus import (
    CorpusEncodingError,
    CorpusFormatError,
    PretrainingCorpus,
    encode_batch,
    prepare_corpus,
)
from albertkit.pretraining.instances import SOPDataset, _truncated_lengths
from albertkit.pretraining.masking import MaskingCollator, mask_tokens
from albertkit.pretraining.sentences import split_sentences

WIKI = "corpus/enwiki-2015-wikiextractor/wiki_AA_00.txt"
SOTU = "corpus/state_union/1954-Eisenhower.txt"  # line 101 is cp1252 ("½¢"), not UTF-8
BOOK = "corpus/gutenberg-extra/orban__double-take.txt"  # one document, one paragraph per line
EMMA = "corpus/gutenberg/austen-emma.txt"  # hard-wrapped lines, blank lines between paragraphs


@pytest.fixture(scope="module")
def tokenizer(spiece_path):
    from albertkit import AlbertTokenizer

    return AlbertTokenizer.from_pretrained(str(spiece_path.parent))


@pytest.fixture(scope="module")
def text_slice(shared_data, tmp_path_factory) -> Path:
    """~200 KB of real text in 4 files: the first Wikipedia articles, a Gutenberg book excerpt,
    the first paragraphs of Emma (hard-wrapped), a State of the Union address (UTF-8 part)."""
    folder = tmp_path_factory.mktemp("slice")
    wiki = (shared_data / WIKI).read_text(encoding="utf-8").split("\n\n")
    (folder / "wiki.txt").write_text("\n\n".join(wiki[:8]) + "\n", encoding="utf-8")
    (folder / "book.txt").write_text((shared_data / BOOK).read_text(encoding="utf-8")[:30000], encoding="utf-8")
    emma = (shared_data / EMMA).read_text(encoding="utf-8")
    (folder / "emma.txt").write_text(emma[:20000], encoding="utf-8")
    sotu = (shared_data / SOTU).read_bytes().split(b"\n")[:100]
    (folder / "sotu.txt").write_bytes(b"\n".join(sotu) + b"\n")
    return folder


@pytest.fixture(scope="module")
def prepared(text_slice, tokenizer, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "corpus"
    prepare_corpus([text_slice], tokenizer, out, num_workers=1, shard_bytes=40_000, heldout_docs=3, progress=False)
    return out


# --------------------------------------------------------------------------- sentence splitting

SEGMENTATION_CASES = [
    ("Mr. Smith went to Washington, D.C. in 1990. He stayed.", ["Mr. Smith went to Washington, D.C. in 1990.", "He stayed."]),
    ('"Stop!" she cried. Then she ran.', ['"Stop!" she cried.', "Then she ran."]),
    ("The U.S. Army was founded in 1775. The Navy followed.", ["The U.S. Army was founded in 1775.", "The Navy followed."]),
    ("He lives in the U.S. The weather is fine.", ["He lives in the U.S.", "The weather is fine."]),
    ("J. R. R. Tolkien wrote it. It sold well.", ["J. R. R. Tolkien wrote it.", "It sold well."]),
    ("The value is 3.14 approximately. Next one.", ["The value is 3.14 approximately.", "Next one."]),
    ("Wait... What happened? I don't know! Really.", ["Wait...", "What happened?", "I don't know!", "Really."]),
    ('He said "yes." Then he left.', ['He said "yes."', "Then he left."]),
    ("Apples, e.g. red ones. Also pears, etc. The end.", ["Apples, e.g. red ones.", "Also pears, etc.", "The end."]),
    ("Born on Jan. 5, 1950. Her father, Dr. Who, was a doctor.", ["Born on Jan. 5, 1950.", "Her father, Dr. Who, was a doctor."]),
    ('"Where are you going?" asked Tom. "Home," said Jane.', ['"Where are you going?" asked Tom.', '"Home," said Jane.']),
    ("Harry S. Truman was president. He was from Missouri.", ["Harry S. Truman was president.", "He was from Missouri."]),
    ("See Fig. 3 and No. 5 for details.", ["See Fig. 3 and No. 5 for details."]),
]


@pytest.mark.parametrize(("text", "expected"), SEGMENTATION_CASES)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_split_sentences_loses_no_text(shared_data):
    paragraph = " ".join((shared_data / WIKI).read_text(encoding="utf-8").split("\n")[:3])
    sentences = split_sentences(paragraph)
    assert len(sentences) > 5
    assert " ".join(sentences) == " ".join(paragraph.split())


# --------------------------------------------------------------------------- corpus preparation


def test_documents_and_sentences_match_source(prepared, text_slice, tokenizer):
    meta = json.loads((prepared / "meta.json").read_text())
    assert meta["complete"]
    # Independent count: blank-line separated blocks per file.
    expected_docs = sum(
        len([b for b in re.split(r"\n\s*\n", p.read_text(encoding="utf-8")) if b.strip()])
        for p in sorted(text_slice.glob("*.txt"))
    )
    assert meta["num_documents"] == expected_docs
    assert meta["num_shards"] > 1  # the slice is larger than one shard
    train, heldout = PretrainingCorpus(prepared, "train"), PretrainingCorpus(prepared, "heldout")
    assert len(heldout) == 3 and len(train) + len(heldout) == expected_docs
    assert set(train.document_ids).isdisjoint(heldout.document_ids)
    # The Gutenberg book is one document (file boundary, no blank line); its sentences are the
    # splitter's sentences of each line, tokenised.
    files = sorted(text_slice.glob("*.txt"))  # book, emma, sotu, wiki
    book_doc = 0
    lines = [line for line in (text_slice / "book.txt").read_text(encoding="utf-8").split("\n") if line.strip()]
    sentences = [s for line in lines for s in split_sentences(line)]
    expected = [ids for ids in encode_batch(tokenizer, sentences) if ids]
    assert files[0].name == "book.txt"  # so the book is global document 0
    split = train if book_doc in train.document_ids else heldout
    doc = split.document(int(np.flatnonzero(split.document_ids == book_doc)[0]))
    assert [s.tolist() for s in doc] == expected


def test_hard_wrapped_paragraphs_are_joined(prepared, tokenizer):
    corpus = PretrainingCorpus(prepared, "train")
    texts = [tokenizer.decode(s.tolist()) for d in range(len(corpus)) for s in corpus.document(d)]
    # Emma's first sentence spans three wrapped lines in the file; it must come out whole.
    assert any(t.startswith("emma woodhouse, handsome, clever, and rich") and t.endswith("vex her.") for t in texts)


def test_shards_are_uint16_memory_mapped(prepared):
    corpus = PretrainingCorpus(prepared)
    assert all(isinstance(t, np.memmap) and t.dtype == np.uint16 for t in corpus._tokens)
    meta = json.loads((prepared / "meta.json").read_text())
    assert meta["dtype"] == "uint16" and len(meta["tokenizer"]["checksum"]) == 64


def test_corpus_pickles_by_path(prepared):
    import pickle

    corpus = PretrainingCorpus(prepared, "heldout")
    blob = pickle.dumps(corpus)
    assert len(blob) < 1000  # no token data inside
    again = pickle.loads(blob)
    assert [s.tolist() for s in again.document(0)] == [s.tolist() for s in corpus.document(0)]


def test_sharding_and_workers_do_not_change_the_corpus(prepared, text_slice, tokenizer, tmp_path):
    other = prepare_corpus([text_slice], tokenizer, tmp_path / "one", num_workers=2, shard_bytes=1 << 30,
                           heldout_docs=3, progress=False)
    a, b = PretrainingCorpus(prepared), PretrainingCorpus(other)
    assert json.loads((other / "meta.json").read_text())["num_shards"] == 1
    assert np.array_equal(a.document_ids, b.document_ids)
    for d in range(len(a)):
        assert [s.tolist() for s in a.document(d)] == [s.tolist() for s in b.document(d)]


def test_heldout_split_is_deterministic(text_slice, tokenizer, prepared, tmp_path):
    again = prepare_corpus([text_slice], tokenizer, tmp_path / "a", num_workers=1, heldout_docs=3, seed=0, progress=False)
    other = prepare_corpus([text_slice], tokenizer, tmp_path / "b", num_workers=1, heldout_docs=3, seed=1, progress=False)
    ids = PretrainingCorpus(prepared, "heldout").document_ids
    assert np.array_equal(PretrainingCorpus(again, "heldout").document_ids, ids)
    assert not np.array_equal(PretrainingCorpus(other, "heldout").document_ids, ids)


def test_restart_after_a_crash_completes_and_matches(text_slice, tokenizer, prepared, tmp_path, monkeypatch):
    real_write = corpus_mod._write_shard
    calls: list[str] = []

    def crash_after_first(folder, *args):
        if calls:
            raise KeyboardInterrupt("simulated kill")
        calls.append(folder.name)
        return real_write(folder, *args)

    out = tmp_path / "restart"
    kwargs = dict(num_workers=1, shard_bytes=40_000, heldout_docs=3, progress=False)
    monkeypatch.setattr(corpus_mod, "_write_shard", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus([text_slice], tokenizer, out, **kwargs)
    meta = json.loads((out / "meta.json").read_text())
    assert not meta["complete"] and [s["name"] for s in meta["shards"]] == ["00000"]
    with pytest.raises(CorpusFormatError, match="incomplete"):
        PretrainingCorpus(out)

    written: list[str] = []

    def record(folder, *args):
        written.append(folder.name)
        return real_write(folder, *args)

    monkeypatch.setattr(corpus_mod, "_write_shard", record)
    prepare_corpus([text_slice], tokenizer, out, **kwargs)
    assert "00000" not in written and written  # the finished shard was kept, the rest was done
    fresh, resumed = PretrainingCorpus(prepared), PretrainingCorpus(out)
    for d in range(len(fresh)):
        assert [s.tolist() for s in fresh.document(d)] == [s.tolist() for s in resumed.document(d)]


def test_different_settings_on_existing_folder_raise(prepared, text_slice, tokenizer):
    with pytest.raises(CorpusFormatError, match="docs_per_shard"):
        prepare_corpus([text_slice], tokenizer, prepared, docs_per_shard=7, shard_bytes=40_000, heldout_docs=3, progress=False)


def test_bad_encoding_names_file_and_line(shared_data, tokenizer, tmp_path):
    source = shared_data / SOTU
    with pytest.raises(CorpusEncodingError, match=r"1954-Eisenhower\.txt: line 101, column \d+: byte b'\\xbd'"):
        prepare_corpus([source], tokenizer, tmp_path / "bad", num_workers=1, progress=False)
    out = prepare_corpus([source], tokenizer, tmp_path / "ok", num_workers=1, fallback_encoding="cp1252", progress=False)
    corpus = PretrainingCorpus(out)
    text = " ".join(tokenizer.decode(s.tolist()) for d in range(len(corpus)) for s in corpus.document(d))
    assert "cancellation of the" in text


def test_missing_input_is_a_clear_error(tokenizer, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        prepare_corpus([tmp_path / "nope"], tokenizer, tmp_path / "out", progress=False)


# --------------------------------------------------------------------------- input fingerprint
# A finished corpus is identified by the content and relative names of its inputs, not by their
# absolute paths or modification times: a re-mount or a copy to another machine must not force a
# re-preparation (it used to make `pretrain --resume` fail).

_TINY = {
    "a.txt": "The first document. It has two sentences.\n\nA second document follows here.\n",
    "sub/b.txt": "Another file, another document. With a few more words in it.\n",
}
_TINY_KW = dict(num_workers=1, docs_per_shard=1, progress=False)


def _write_tiny(folder: Path) -> Path:
    for name, text in _TINY.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _copy_with_new_mtimes(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for path in dst.rglob("*.txt"):
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 3_600 * 10**9))  # an hour later
        assert path.stat().st_mtime_ns != (src / path.relative_to(dst)).stat().st_mtime_ns
    return dst


def _shard_state(out: Path) -> dict:
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted((out / "shards").rglob("*"))}


def _forbid_preparation(monkeypatch) -> None:
    monkeypatch.setattr(corpus_mod, "_write_shard", lambda *a: pytest.fail("the corpus was prepared again"))


def test_identical_inputs_elsewhere_with_new_mtimes_reuse_the_corpus(tokenizer, tmp_path, monkeypatch):
    first = _write_tiny(tmp_path / "mnt1" / "shared" / "data")
    out = prepare_corpus([first], tokenizer, tmp_path / "corpus", **_TINY_KW)
    shards, meta = _shard_state(out), (out / "meta.json").read_bytes()
    assert sum(p.is_file() for p in shards) == 3 * 4  # one document per shard, four files each
    moved = _copy_with_new_mtimes(first, tmp_path / "home" / "x" / "shared" / "data")
    shutil.rmtree(first)  # the old mount point is gone
    _forbid_preparation(monkeypatch)
    assert prepare_corpus([moved], tokenizer, out, **_TINY_KW) == out
    assert _shard_state(out) == shards and (out / "meta.json").read_bytes() == meta
    assert [e["path"] for e in json.loads(meta)["inputs"]] == ["a.txt", "sub/b.txt"]


def test_one_changed_byte_is_refused_naming_the_file(tokenizer, tmp_path):
    first = _write_tiny(tmp_path / "data")
    out = prepare_corpus([first], tokenizer, tmp_path / "corpus", **_TINY_KW)
    shards = _shard_state(out)
    changed = _copy_with_new_mtimes(first, tmp_path / "copy")
    target = changed / "sub" / "b.txt"
    target.write_bytes(_TINY["sub/b.txt"].replace("Another", "another").encode())  # one byte, same size
    assert target.stat().st_size == len(_TINY["sub/b.txt"])
    with pytest.raises(CorpusFormatError) as err:
        prepare_corpus([changed], tokenizer, out, **_TINY_KW)
    message = str(err.value)
    assert f"{out} already holds a corpus prepared with different inputs: {target} has other content" in message
    assert "same size" in message and f"delete {out}" in message
    target.write_bytes(b"Short now.\n")
    with pytest.raises(CorpusFormatError, match=rf"{re.escape(str(target))} has 11 bytes, where the corpus was prepared from {len(_TINY['sub/b.txt'])}\b"):
        prepare_corpus([changed], tokenizer, out, **_TINY_KW)
    assert _shard_state(out) == shards  # a refused call leaves the corpus alone


def test_old_format_meta_is_accepted_and_upgraded(tokenizer, tmp_path, monkeypatch, caplog):
    first = _write_tiny(tmp_path / "data")
    out = prepare_corpus([first], tokenizer, tmp_path / "corpus", **_TINY_KW)
    meta = json.loads((out / "meta.json").read_text())
    new_inputs = meta["inputs"]
    # The fingerprint albertkit wrote before content hashes: absolute path, size, mtime.
    files = [first / e["path"] for e in new_inputs]
    meta["inputs"] = [{"path": str(p.resolve()), "bytes": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns} for p in files]
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    shards = _shard_state(out)
    moved = _copy_with_new_mtimes(first, tmp_path / "elsewhere")

    grown = _copy_with_new_mtimes(first, tmp_path / "grown")
    with open(grown / "a.txt", "a", encoding="utf-8") as fh:
        fh.write("One more line.\n")
    size = len(_TINY["a.txt"])
    with pytest.raises(CorpusFormatError, match=rf"a\.txt has {size + 15} bytes, where the corpus was prepared from {size}\b"):
        prepare_corpus([grown], tokenizer, out, **_TINY_KW)

    _forbid_preparation(monkeypatch)
    with caplog.at_level(logging.INFO, logger=corpus_mod.__name__):
        assert prepare_corpus([moved], tokenizer, out, **_TINY_KW) == out
    assert "content was not checked" in caplog.text and "upgraded" in caplog.text
    upgraded = json.loads((out / "meta.json").read_text())
    assert upgraded["inputs"] == new_inputs and {**upgraded, "inputs": None} == {**meta, "inputs": None}
    assert _shard_state(out) == shards
    assert not list(out.glob(".meta.json.*"))  # written through a temporary file, none left behind


# --------------------------------------------------------------------------- SOP instances


def google_sop_reference(documents, max_seq_length, short_seq_prob, rng, doc_index):
    """ALBERT's create_instances_from_document (random_next_sentence=False), transcribed, returning
    (a sentence ids, b sentence ids, label) before truncation; segments are lists of sentence ids."""
    document = documents[doc_index]
    max_num_tokens = max_seq_length - 3
    target_seq_length = max_num_tokens
    if rng.random() < short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)
    out = []
    current_chunk, current_length, i = [], 0, 0
    while i < len(document):
        segment = document[i]
        current_chunk.append(segment)
        current_length += segment[1]
        if i == len(document) - 1 or current_length >= target_seq_length:
            if current_chunk:
                a_end = 1
                if len(current_chunk) >= 2:
                    a_end = rng.randint(1, len(current_chunk) - 1)
                tokens_a = [s for s in current_chunk[:a_end]]
                tokens_b = []
                if len(current_chunk) == 1:
                    label = 1
                    target_b_length = target_seq_length - sum(s[1] for s in tokens_a)
                    for _ in range(10):
                        random_document_index = rng.randint(0, len(documents) - 1)
                        if random_document_index != doc_index:
                            break
                    random_document = documents[random_document_index]
                    random_start = rng.randint(0, len(random_document) - 1)
                    for j in range(random_start, len(random_document)):
                        tokens_b.append(random_document[j])
                        if sum(s[1] for s in tokens_b) >= target_b_length:
                            break
                    i -= len(current_chunk) - a_end
                elif rng.random() < 0.5:
                    label = 1
                    tokens_b = tokens_a
                    tokens_a = current_chunk[a_end:]
                else:
                    label = 0
                    tokens_b = current_chunk[a_end:]
                out.append(([s[0] for s in tokens_a], [s[0] for s in tokens_b], label))
            current_chunk, current_length = [], 0
        i += 1
    return out


def test_sop_chunking_matches_google_reference(prepared):
    corpus = PretrainingCorpus(prepared)
    for max_len, short in ((128, 0.1), (64, 0.5)):
        ds = SOPDataset(corpus, max_seq_length=max_len, short_seq_prob=short, seed=3, epoch=2)
        documents = [
            [(s, int(corpus.sentence_lengths[s])) for s in range(first, first + count)]
            for first, count in corpus.document_sentences
            if count > 0
        ]
        rng = random.Random("albertkit-sop:3:2")
        expected = [inst for d in range(len(documents)) for inst in google_sop_reference(documents, max_len, short, rng, d)]
        ranges = ds.sentence_ranges
        got = [
            (list(range(a0, a1)), list(range(b0, b1)), int(label))
            for (a0, a1, b0, b1), label in zip(ranges, ds.labels[np.argsort(ds.order)])
        ]
        assert got == expected


def test_truncation_matches_google_loop():
    rng = random.Random(0)
    la = np.array([rng.randint(1, 400) for _ in range(2000)])
    lb = np.array([rng.randint(1, 400) for _ in range(2000)])
    new_a, new_b = _truncated_lengths(la, lb, 125)
    for a, b, na, nb in zip(la, lb, new_a, new_b):
        ta, tb = int(a), int(b)  # Google's truncate_seq_pair on lengths
        while ta + tb > 125:
            if ta > tb:
                ta -= 1
            else:
                tb -= 1
        assert (ta, tb) == (na, nb)


def test_sop_instances_are_well_formed_and_balanced(prepared, tokenizer):
    corpus = PretrainingCorpus(prepared)
    ds = SOPDataset(corpus, max_seq_length=64, short_seq_prob=0.1, seed=0)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert len(ds) > 500
    for i in range(len(ds)):
        item = ds[i]
        ids, types = item["input_ids"], item["token_type_ids"]
        seps = np.flatnonzero(ids == sep_id)
        assert len(ids) <= 64 and ids[0] == cls_id and len(seps) == 2 and seps[1] == len(ids) - 1
        assert (types[: seps[0] + 1] == 0).all() and (types[seps[0] + 1 :] == 1).all()
        assert ds.a_length[i] >= 1 and ds.b_length[i] >= 1
        if not ds.random_b[i]:  # same document: order of the token ranges gives the label
            before = ds.a_start[i] + ds.a_length[i] <= ds.b_start[i]
            assert item["sentence_order_label"] == (0 if before else 1)
    same = ~ds.random_b
    swapped = ds.labels[same].mean()
    sigma = 0.5 / np.sqrt(same.sum())
    assert abs(swapped - 0.5) < 4 * sigma, (swapped, same.sum())
    assert (ds.labels[ds.random_b] == 1).all()


def test_sop_index_is_deterministic(prepared):
    corpus = PretrainingCorpus(prepared)
    a, b, c = SOPDataset(corpus, 64, seed=0, epoch=1), SOPDataset(corpus, 64, seed=0, epoch=1), SOPDataset(corpus, 64, seed=0, epoch=2)
    assert np.array_equal(a.a_start, b.a_start) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.a_start[: len(c)], c.a_start[: len(a)])


# --------------------------------------------------------------------------- masking


@pytest.fixture(scope="module")
def collator(tokenizer):
    return MaskingCollator(tokenizer, masked_lm_prob=0.15, max_predictions_per_seq=20, max_ngram=3, seed=0)


@pytest.fixture(scope="module")
def sequences(prepared):
    ds = SOPDataset(PretrainingCorpus(prepared), max_seq_length=128, seed=0)
    return [ds[i] for i in range(len(ds))]


def test_masking_rate_and_cap(collator, sequences, tokenizer):
    big = MaskingCollator(tokenizer, max_predictions_per_seq=10_000, seed=0)
    ratios = []
    for item in sequences[:300]:
        ids = item["input_ids"]
        _, pos, _ = collator.mask_one(ids, item["index"])
        assert len(pos) == min(20, max(1, round(len(ids) * 0.15)))  # capped at max_predictions
        _, pos, _ = big.mask_one(ids, item["index"])
        ratios.append(len(pos) / len(ids))
    assert abs(np.mean(ratios) - 0.15) < 0.01


def test_ngram_lengths_follow_inverse_n(collator, prepared):
    ds = SOPDataset(PretrainingCorpus(prepared), max_seq_length=512, seed=0)
    spans, shortened = [], 0
    for i in range(len(ds)):
        item = ds[i]
        rng = np.random.default_rng([0, item["index"]])
        *_, pairs = mask_tokens(item["input_ids"], rng, is_word_start=collator.is_word_start,
                                never_mask=collator.never_mask, replacement_ids=collator.replacement_ids,
                                mask_id=collator.mask_id, max_predictions=10_000, return_spans=True)
        # Spans shortened to meet the budget (the end game of a sequence) are reported apart.
        shortened += sum(used < drawn for used, drawn in pairs)
        spans.extend(used for used, drawn in pairs if used == drawn)
    p = np.array([6, 3, 2]) / 11
    counts = np.bincount(spans, minlength=4)[1:] / len(spans)
    sigma = np.sqrt(p * (1 - p) / len(spans))
    assert len(spans) > 2000 and shortened < 0.05 * len(spans)
    assert np.all(np.abs(counts - p) < 4 * sigma + 0.01), counts


def test_replacement_split_80_10_10(collator, sequences, tokenizer):
    kinds = np.zeros(3)
    for item in sequences:
        masked, pos, labels = collator.mask_one(item["input_ids"], item["index"])
        kinds[0] += (masked[pos] == tokenizer.mask_token_id).sum()
        kinds[1] += (masked[pos] == labels).sum()
        kinds[2] += ((masked[pos] != labels) & (masked[pos] != tokenizer.mask_token_id)).sum()
    # "unchanged" also catches the rare random draw equal to the original (p ~ 1/30000).
    frac = kinds / kinds.sum()
    sigma = np.sqrt(np.array([0.8, 0.1, 0.1]) * np.array([0.2, 0.9, 0.9]) / kinds.sum())
    assert np.all(np.abs(frac - [0.8, 0.1, 0.1]) < 4 * sigma), frac


def test_whole_words_and_never_special(collator, sequences, tokenizer):
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id}
    starts = collator.is_word_start
    for item in sequences:
        ids = item["input_ids"]
        masked, pos, labels = collator.mask_one(ids, item["index"])
        assert not special & set(labels.tolist())
        chosen = np.zeros(len(ids), bool)
        chosen[pos] = True
        for p in pos:
            # a continuation piece is masked together with the piece before it, and vice versa
            if not starts[ids[p]] and ids[p - 1] not in special:
                assert chosen[p - 1]
            if p + 1 < len(ids) and not starts[ids[p + 1]] and ids[p + 1] not in special:
                assert chosen[p + 1]
        unmasked = np.ones(len(ids), bool)
        unmasked[pos] = False
        assert np.array_equal(masked[unmasked], ids[unmasked])


def test_collator_batch_is_deterministic_per_instance(collator, sequences):
    batch = collator(sequences[:8])
    reordered = collator([(item["index"], item) for item in [sequences[5], *sequences[8:12]]])
    row = 0
    n = len(sequences[5]["input_ids"])
    p = int((batch["masked_lm_labels"][5] != -100).sum())
    assert batch["input_ids"][5, :n].tolist() == reordered["input_ids"][row, :n].tolist()
    assert batch["masked_lm_positions"][5, :p].tolist() == reordered["masked_lm_positions"][row, :p].tolist()
    other_seed = MaskingCollator.__new__(MaskingCollator)
    other_seed.__dict__.update(collator.__dict__, seed=1)
    assert not all(
        collator(sequences[i : i + 1])["masked_lm_positions"].tolist() == other_seed(sequences[i : i + 1])["masked_lm_positions"].tolist()
        for i in range(5)
    )


def test_collator_shapes_and_padding(tokenizer, sequences):
    col = MaskingCollator(tokenizer, seed=0, pad_to_multiple_of=16)
    batch = col(sequences[:6])
    lengths = [len(s["input_ids"]) for s in sequences[:6]]
    bsz, width = batch["input_ids"].shape
    assert bsz == 6 and width % 16 == 0 and width >= max(lengths)
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tokenizer.pad_token_id).all()
    pos, labels = batch["masked_lm_positions"], batch["masked_lm_labels"]
    assert pos.shape == labels.shape and pos.shape[1] <= 20
    real = labels != -100
    padded = np.stack([np.pad(x["input_ids"], (0, width - len(x["input_ids"]))) for x in sequences[:6]])
    gathered = np.take_along_axis(padded, pos.numpy(), axis=1)  # labels are the original ids there
    assert (gathered[real.numpy()] == labels[real].numpy()).all()
    assert batch["sentence_order_label"].tolist() == [s["sentence_order_label"] for s in sequences[:6]]
    with pytest.raises(ValueError, match="index"):
        col([{"input_ids": sequences[0]["input_ids"]}])


def test_collator_static_shapes_pads_only(tokenizer, sequences):
    """static_shapes (for torch.compile) fixes T and P; the masks and labels are those of the dynamic batch."""
    dynamic = MaskingCollator(tokenizer, seed=0)(sequences[:6])
    width = max(len(s["input_ids"]) for s in sequences[:6]) + 7
    static = MaskingCollator(tokenizer, seed=0, static_shapes=width)(sequences[:6])
    assert static["input_ids"].shape == (6, width) and static["masked_lm_positions"].shape == (6, 20)
    t, p = dynamic["input_ids"].shape[1], dynamic["masked_lm_positions"].shape[1]
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(static[key][:, :t], dynamic[key]), key
    assert (static["input_ids"][:, t:] == tokenizer.pad_token_id).all()
    assert not static["attention_mask"][:, t:].any() and not static["token_type_ids"][:, t:].any()
    assert torch.equal(static["masked_lm_positions"][:, :p], dynamic["masked_lm_positions"])
    assert torch.equal(static["masked_lm_labels"][:, :p], dynamic["masked_lm_labels"])
    assert (static["masked_lm_labels"][:, p:] == -100).all()
    with pytest.raises(ValueError, match="static_shapes"):
        MaskingCollator(tokenizer, seed=0, static_shapes=8)(sequences[:1])


def test_single_piece_masking_splits_words_and_schedule_switches(tokenizer, sequences):
    # whole_word=False: each piece is its own unit, so some masked pieces have visible word-mates
    # (never under whole-word masking); the budget and the never-special rule are unchanged.
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id}
    words = MaskingCollator(tokenizer, max_ngram=3, seed=0)
    pieces = MaskingCollator(tokenizer, max_ngram=3, seed=0, whole_word=False)
    starts = words.is_word_start
    partial = 0
    for item in sequences:
        ids = item["input_ids"]
        _, pos_w, _ = words.mask_one(ids, item["index"])
        _, pos_p, labels = pieces.mask_one(ids, item["index"])
        assert len(pos_p) == len(pos_w) and not special & set(labels.tolist())
        chosen = np.zeros(len(ids), bool)
        chosen[pos_p] = True
        partial += sum(
            1 for p in pos_p
            if (p + 1 < len(ids) and not starts[ids[p + 1]] and ids[p + 1] not in special and not chosen[p + 1])
            or (not starts[ids[p]] and ids[p - 1] not in special and not chosen[p - 1])
        )
    assert partial > 0
    # The schedule: stream positions < subword_masking_examples get single pieces, later ones n-grams,
    # whatever the instance's own index/epoch (so it holds across epochs and resumes).
    sched = MaskingCollator(tokenizer, max_ngram=3, seed=0, subword_masking_examples=100)
    single = MaskingCollator(tokenizer, max_ngram=1, seed=0, whole_word=False)
    for item in sequences[:20]:
        ids, i = item["input_ids"], item["index"]
        early = sched.mask_one(ids, i, 0, stream_index=99)
        late = sched.mask_one(ids, i, 0, stream_index=100)
        np.testing.assert_array_equal(early[1], single.mask_one(ids, i)[1])
        np.testing.assert_array_equal(late[1], words.mask_one(ids, i)[1])
    batch = sched([{**s, "stream_index": 100 + k} for k, s in enumerate(sequences[:4])])
    ref = words([dict(s) for s in sequences[:4]])
    assert torch.equal(batch["masked_lm_positions"], ref["masked_lm_positions"])
