"""Corpus preparation fails fast and clearly (issue 19, items 7, 11 and 13): a killed tokenising
worker stops the run within seconds (multiprocessing.Pool used to wait forever for its lost task),
binary files are refused as "not a text file", and a failed preparation does not block its retry."""

from __future__ import annotations

import os
import signal
import time

import pytest

from albertkit.pretraining import corpus as corpus_mod
from albertkit.pretraining.corpus import CorpusEncodingError, CorpusWorkerError, PretrainingCorpus, prepare_corpus


@pytest.fixture(scope="module")
def tokenizer(spiece_path):
    from albertkit import AlbertTokenizer

    return AlbertTokenizer.from_pretrained(spiece_path.parent)


@pytest.fixture
def texts(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    for k in range(6):
        (folder / f"{k}.txt").write_text(f"Document {k} starts here. It has a second sentence.\n\nAnother one, number {k}.\n")
    return folder


class _Timeout(Exception):
    pass


def _alarm(seconds: int):
    def fire(signum, frame):
        raise _Timeout(f"still waiting after {seconds} s: a dead worker hangs the run")

    signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)


def test_a_killed_worker_fails_the_run_within_seconds(texts, tokenizer, tmp_path, monkeypatch):
    def killed_on_shard_2(job, run_shard=corpus_mod._run_shard):
        if job[0] == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
        return run_shard(job)

    # Jobs name their function by reference; forked workers inherit the patched module attribute.
    killed_on_shard_2.__module__, killed_on_shard_2.__qualname__ = corpus_mod.__name__, "_run_shard"
    monkeypatch.setattr(corpus_mod, "_run_shard", killed_on_shard_2)
    started = time.monotonic()
    _alarm(60)
    try:
        with pytest.raises(CorpusWorkerError, match=r"worker process died \(killed by signal 9.*shards .*00002.*rerun"):
            prepare_corpus([texts], tokenizer, tmp_path / "out", num_workers=2, docs_per_shard=1, progress=False)
    finally:
        signal.alarm(0)
    assert time.monotonic() - started < 30
    monkeypatch.undo()
    # The finished shards are kept and the rerun completes.
    out = prepare_corpus([texts], tokenizer, tmp_path / "out", num_workers=2, docs_per_shard=1, progress=False)
    assert len(PretrainingCorpus(out, split="train")) == 12


def test_binary_file_is_not_text(texts, tokenizer, tmp_path):
    (texts / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(CorpusEncodingError, match=r"image\.txt: not a text file \(a NUL byte at offset 8\)"):
        prepare_corpus([texts], tokenizer, tmp_path / "out", num_workers=1, progress=False)


def test_a_failed_preparation_does_not_block_its_retry(texts, tokenizer, tmp_path):
    (texts / "latin1.txt").write_bytes("Caf\xe9 au lait. Tr\xe8s bien.\n".encode("latin-1"))
    with pytest.raises(CorpusEncodingError, match=r"latin1\.txt: line 1.*--fallback-encoding cp1252"):
        prepare_corpus([texts], tokenizer, tmp_path / "out", num_workers=1, docs_per_shard=1, progress=False)
    out = prepare_corpus([texts], tokenizer, tmp_path / "out", num_workers=1, docs_per_shard=1, progress=False,
                         fallback_encoding="cp1252")
    assert len(PretrainingCorpus(out, split="train")) == 13
