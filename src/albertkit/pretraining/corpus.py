"""Plain text -> documents -> sentences -> token ids, sharded on disk and memory-mapped back.

    >>> out = prepare_corpus(["corpus/"], tokenizer, Path("runs/corpus"), heldout_fraction=0.01)  # doctest: +SKIP
    >>> corpus = PretrainingCorpus(out, split="train")                                             # doctest: +SKIP
    >>> corpus.document(0)[0]      # token ids of the first sentence of the first document        # doctest: +SKIP

Input format: UTF-8 text files (a folder is searched recursively for ``*.txt``). A blank line or the
end of a file ends a document. Inside a document each line is a paragraph, except in blocks whose
lines are all short (hard-wrapped text such as old Project Gutenberg files), where the lines are
joined first. Paragraphs are split into sentences by :func:`albertkit.pretraining.sentences.split_sentences`.

On-disk layout of ``output_dir``::

    meta.json                    inputs (relative name, size, sha256 of each file), tokenizer checksum, settings,
                                 shard list (written atomically)
    heldout_documents.npy        sorted global indices of held-out documents (int64)
    shards/00000/tokens.npy      all token ids of the shard, uint16 (int32 when vocab >= 65536)
    shards/00000/sentences.npy   int64 [n_sentences + 1]: sentence i = tokens[s[i]:s[i+1]]
    shards/00000/documents.npy   int64 [n_documents + 1]: document j = sentences d[j]..d[j+1]-1
    shards/00000/shard.json      counts; the folder appears atomically, so a present folder is complete

A shard is a run of consecutive documents (``docs_per_shard`` documents or ``shard_bytes`` of text,
whichever comes first). Shards are tokenised by ``num_workers`` processes; a rerun of the same call
skips the shards already on disk, so a killed preparation resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from albertkit.pretraining.sentences import split_sentences
from albertkit.utils import atomic_folder, atomic_path, atomic_write_text

__all__ = [
    "CorpusEncodingError",
    "CorpusFormatError",
    "CorpusWorkerError",
    "PretrainingCorpus",
    "prepare_corpus",
    "tokenizer_checksum",
]

logger = logging.getLogger(__name__)

FORMAT_NAME = "albertkit-pretraining-corpus"
FORMAT_VERSION = 1
# A block whose lines are all at most this long is hard-wrapped prose/verse: join its lines.
_WRAP_WIDTH = 100
_ENCODE_BATCH = 2048  # sentences per tokenizer call


class CorpusEncodingError(ValueError):
    """A file is not in the expected encoding; the message names file, line and byte."""


class CorpusFormatError(ValueError):
    """An output folder or its meta.json does not match what is asked for."""


class CorpusWorkerError(ChildProcessError):
    """A tokenising worker process died (killed, out of memory, crashed); the run stops instead of waiting."""


# ---------------------------------------------------------------------------------------------
# Tokenizer adapters: albertkit.AlbertTokenizer has encode_batch/word_start_mask; Hugging Face
# tokenizers are accepted too (used as a reference in tests).
# ---------------------------------------------------------------------------------------------


def encode_batch(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    if hasattr(tokenizer, "encode_batch"):
        return tokenizer.encode_batch(texts, add_special_tokens=False)
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def word_start_mask(tokenizer: Any) -> np.ndarray:
    """Boolean [vocab_size]: True where a piece starts a word (leading ``▁``)."""
    if hasattr(tokenizer, "word_start_mask"):
        return np.asarray(tokenizer.word_start_mask(), dtype=bool)
    pieces = tokenizer.convert_ids_to_tokens(list(range(tokenizer.vocab_size)))
    return np.array([str(p).startswith("▁") for p in pieces], dtype=bool)


_PROBE = [
    "Hello, my dog is cute.",
    "I was born in 92000, and this is falsé.",
    "``Quotes'' and ÅCCENTS   with   spaces; U.S. 3.14 [MASK] <unk> ☃",
]


def tokenizer_checksum(tokenizer: Any) -> str:
    """sha256 of what the tokenizer does, not of the class: vocabulary, special ids and probe ids.

    Two tokenizers with the same checksum produce the same shards (e.g. albertkit's and Hugging
    Face's over the same spiece.model).
    """
    h = hashlib.sha256()
    size = int(tokenizer.vocab_size)
    h.update(f"{size}|{special_ids(tokenizer)}|".encode())
    h.update("\n".join(map(str, tokenizer.convert_ids_to_tokens(list(range(size))))).encode())
    h.update(json.dumps(encode_batch(tokenizer, list(_PROBE))).encode())
    return h.hexdigest()


def special_ids(tokenizer: Any) -> dict[str, int]:
    return {
        "cls": int(tokenizer.cls_token_id),
        "sep": int(tokenizer.sep_token_id),
        "mask": int(tokenizer.mask_token_id),
        "pad": int(tokenizer.pad_token_id),
    }


# ---------------------------------------------------------------------------------------------
# Reading: files -> document byte ranges (cheap scan) -> text of one document
# ---------------------------------------------------------------------------------------------


def _list_files(inputs: Sequence[str | os.PathLike], pattern: str) -> list[tuple[Path, str]]:
    """The input files, each with its name relative to the input it was found under (a file given
    directly: its own name). The relative names, not the absolute paths, go into the fingerprint:
    the same data under another mount point or on another machine is the same corpus."""
    files: list[tuple[Path, str]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob(pattern) if p.is_file())
            if not found:
                raise FileNotFoundError(f"no {pattern} files under {path}")
            files.extend((p, p.relative_to(path).as_posix()) for p in found)
        elif path.is_file():
            files.append((path, path.name))
        else:
            raise FileNotFoundError(f"corpus input not found: {path}")
    return files


_HASH_CHUNK = 1 << 20


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fingerprint(files: list[tuple[Path, str]]) -> list[dict[str, Any]]:
    """What identifies the inputs: relative name, size and sha256 of each file, in reading order.

    Content, not modification times: a copy or a re-mount of the same files gives new mtimes, and
    must not make a finished corpus unusable (``--resume`` of a pretraining run prepares again).
    """
    return [{"path": name, "bytes": path.stat().st_size, "sha256": _file_sha256(path)} for path, name in files]


def _is_unhashed(inputs: list[dict[str, Any]]) -> bool:
    """True for the fingerprint albertkit wrote before content hashes: absolute path, size, mtime."""
    return bool(inputs) and all("sha256" not in entry for entry in inputs)


def _same_name(was: str, now: str, unhashed: bool) -> bool:
    if not unhashed:
        return was == now
    # The old fingerprint held absolute paths: the relative name must be their tail.
    tail = Path(now).parts
    return Path(was).parts[-len(tail):] == tail


def _inputs_difference(old: list[dict[str, Any]], new: list[dict[str, Any]], paths: list[Path]) -> str | None:
    """None when the fingerprint ``old`` (from meta.json) matches ``new``; else what differs first,
    naming the file. An old fingerprint without hashes matches on names and sizes alone."""
    unhashed = _is_unhashed(old)
    for k, (was, now) in enumerate(zip(old, new)):
        path = paths[k]
        if not _same_name(str(was.get("path")), now["path"], unhashed):
            return f"input file {k + 1} is {path}, where the corpus has {was.get('path')}"
        if was.get("bytes") != now["bytes"]:
            return f"{path} has {now['bytes']} bytes, where the corpus was prepared from {was.get('bytes')}"
        if not unhashed and was.get("sha256") != now["sha256"]:
            return (
                f"{path} has other content than the file the corpus was prepared from (same size, "
                f"{now['bytes']} bytes; sha256 {now['sha256'][:12]}..., was {str(was.get('sha256'))[:12]}...)"
            )
    if len(new) > len(old):
        return f"{len(new)} input files, where the corpus was prepared from {len(old)} (first new one: {paths[len(old)]})"
    if len(old) > len(new):
        return f"{len(new)} input files, where the corpus was prepared from {len(old)} (first missing one: {old[len(new)].get('path')})"
    return None


@dataclass(frozen=True)
class _Doc:
    file: int  # index into the file list
    start: int  # byte offsets [start, end) in that file
    end: int
    line: int  # 1-based line number of the first line, for error messages


def _check_text_file(path: Path) -> None:
    """Refuse a binary file up front (NUL or many control bytes in its first 64 KB): it is not text in any encoding
    a corpus uses, and tokenising it only produces garbage (or one huge "line")."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    nul = head.find(b"\0")
    if nul >= 0:
        raise CorpusEncodingError(f"{path}: not a text file (a NUL byte at offset {nul}); pretraining reads plain text")
    # Control bytes other than whitespace and ESC: ~10% of random or compressed data, ~0 in any text.
    controls = sum(head.count(bytes([b])) for b in range(32) if b not in (9, 10, 11, 12, 13, 27)) + head.count(b"\x7f")
    if head and controls > 0.05 * len(head):
        raise CorpusEncodingError(
            f"{path}: not a text file ({controls} control bytes in its first {len(head)}); pretraining reads plain text"
        )


def _scan_documents(file_index: int, path: Path) -> Iterator[_Doc]:
    """Byte ranges of the blank-line separated blocks of one file (no decoding, so it is fast)."""
    offset = 0
    start = None
    start_line = 0
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if raw.strip():
                if start is None:
                    start, start_line = offset, line_no
            elif start is not None:
                yield _Doc(file_index, start, offset, start_line)
                start = None
            offset += len(raw)
    if start is not None:
        yield _Doc(file_index, start, offset, start_line)


_WARNED: set[Path] = set()


def _decode_line(raw: bytes, path: Path, line_no: int, encoding: str, fallback: str | None) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        if fallback is not None:
            try:
                text = raw.decode(fallback)
            except UnicodeDecodeError:
                pass
            else:
                if path not in _WARNED:  # once per file and process: these files have many such lines
                    _WARNED.add(path)
                    logger.warning("%s line %d is not %s; decoding such lines as %s", path, line_no, encoding, fallback)
                return text
        bad = raw[err.start : err.start + 4]
        raise CorpusEncodingError(
            f"{path}: line {line_no}, column {err.start + 1}: byte {bad[:1]!r} is not valid {encoding} "
            f"({err.reason}); convert the file to {encoding} or pass a fallback encoding "
            f"(--fallback-encoding cp1252 on the command line, fallback_encoding='cp1252' in Python)"
        ) from None


def _document_paragraphs(lines: list[str]) -> list[str]:
    lines = [" ".join(line.split()) for line in lines]
    lines = [line for line in lines if line]
    if len(lines) > 1 and max(map(len, lines)) <= _WRAP_WIDTH:
        return [" ".join(lines)]  # hard-wrapped block: one paragraph
    return lines


def _read_document(path: Path, doc: _Doc, encoding: str, fallback: str | None) -> list[str]:
    """Sentences of one document."""
    with open(path, "rb") as fh:
        fh.seek(doc.start)
        data = fh.read(doc.end - doc.start)
    raw_lines = data.splitlines()
    lines = [_decode_line(raw, path, doc.line + k, encoding, fallback) for k, raw in enumerate(raw_lines)]
    if doc.start == 0 and lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]  # byte-order mark
    sentences: list[str] = []
    for paragraph in _document_paragraphs(lines):
        sentences.extend(split_sentences(paragraph))
    return sentences


# ---------------------------------------------------------------------------------------------
# Shard workers
# ---------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(tokenizer: Any, files: list[Path], encoding: str, fallback: str | None, dtype: str) -> None:
    _WORKER.update(tokenizer=tokenizer, files=files, encoding=encoding, fallback=fallback, dtype=dtype)


def _tokenize_shard(docs: list[_Doc]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tokenizer, files = _WORKER["tokenizer"], _WORKER["files"]
    doc_sentences = [_read_document(files[d.file], d, _WORKER["encoding"], _WORKER["fallback"]) for d in docs]
    flat = [s for sents in doc_sentences for s in sents]
    ids: list[list[int]] = []
    for k in range(0, len(flat), _ENCODE_BATCH):
        ids.extend(encode_batch(tokenizer, flat[k : k + _ENCODE_BATCH]))
    # Sentences that tokenise to nothing are dropped (they cannot be masked or segmented).
    sent_lengths: list[int] = []
    doc_counts: list[int] = []
    pos = 0
    for sents in doc_sentences:
        kept = 0
        for seq in ids[pos : pos + len(sents)]:
            if seq:
                sent_lengths.append(len(seq))
                kept += 1
        pos += len(sents)
        doc_counts.append(kept)
    tokens = np.fromiter((t for seq in ids for t in seq), dtype=_WORKER["dtype"], count=sum(map(len, ids)))
    sentences = np.zeros(len(sent_lengths) + 1, dtype=np.int64)
    np.cumsum(sent_lengths, out=sentences[1:])
    documents = np.zeros(len(doc_counts) + 1, dtype=np.int64)
    np.cumsum(doc_counts, out=documents[1:])
    return tokens, sentences, documents


def _write_shard(folder: Path, tokens: np.ndarray, sentences: np.ndarray, documents: np.ndarray) -> dict:
    info = {
        "num_documents": int(len(documents) - 1),
        "num_sentences": int(len(sentences) - 1),
        "num_tokens": int(len(tokens)),
    }
    with atomic_folder(folder) as tmp:
        np.save(tmp / "tokens.npy", tokens)
        np.save(tmp / "sentences.npy", sentences)
        np.save(tmp / "documents.npy", documents)
        (tmp / "shard.json").write_text(json.dumps(info))
    return info


def _run_shard(job: tuple[int, Path, list[_Doc]]) -> tuple[int, dict, int]:
    index, folder, docs = job
    tokens, sentences, documents = _tokenize_shard(docs)
    info = _write_shard(folder, tokens, sentences, documents)
    return index, info, sum(d.end - d.start for d in docs)


# ---------------------------------------------------------------------------------------------
# prepare_corpus
# ---------------------------------------------------------------------------------------------


def _plan_shards(docs: list[_Doc], docs_per_shard: int, shard_bytes: int) -> list[list[_Doc]]:
    shards: list[list[_Doc]] = []
    current: list[_Doc] = []
    size = 0
    for doc in docs:
        current.append(doc)
        size += doc.end - doc.start
        if len(current) >= docs_per_shard or size >= shard_bytes:
            shards.append(current)
            current, size = [], 0
    if current:
        shards.append(current)
    return shards


def _tokenize_pending(pending: list, init_args: tuple, workers: int) -> Iterator[tuple[int, dict, int]]:
    """Run ``_run_shard`` over ``pending`` jobs, in this process or ``workers`` forked ones, yielding
    results as they finish.

    A process pool from concurrent.futures, not multiprocessing.Pool: when a Pool worker dies
    (SIGKILL, the OOM killer, a crash in native code) its task is silently lost and
    ``imap_unordered`` waits for it forever; the executor instead marks itself broken, which
    fails the run with :class:`CorpusWorkerError` (the shards done so far are kept for a rerun).
    """
    if workers == 1:
        _init_worker(*init_args)
        yield from map(_run_shard, pending)
        return
    # fork: the tokenizer is inherited, not pickled; a Python exception in a worker propagates here.
    executor = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker, initargs=init_args
    )
    jobs = iter(pending)
    running: dict = {}
    job = pending[0]
    processes: list = []
    try:
        for job in jobs:  # at most two jobs per worker in flight: memory stays bounded
            running[executor.submit(_run_shard, job)] = job
            if len(running) >= 2 * workers:
                break
        # The worker processes exist once jobs are submitted; kept to report how one died.
        processes = list(getattr(executor, "_processes", {}).values())
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                result = future.result()
                yield result
                nxt = next(jobs, None)
                if nxt is not None:
                    running[executor.submit(_run_shard, nxt)] = nxt
    except BrokenProcessPool:
        for process in processes:
            process.join(timeout=1.0)
        codes = sorted({p.exitcode for p in processes if p.exitcode})
        codes = [c for c in codes if c != -15] or codes  # the pool SIGTERMs the survivors itself
        how = ", ".join(f"killed by signal {-c}" if c < 0 else f"exit code {c}" for c in codes) or "it exited"
        # Every unfinished job fails with the pool, so name them all: one of them killed its worker.
        names = sorted({job[1].name, *(j[1].name for j in running.values())})
        raise CorpusWorkerError(
            f"a tokenising worker process died ({how}; out of memory?) while shards {', '.join(names)} were being "
            f"prepared; rerun to resume from the finished shards (with one worker, prepare_workers=1, a failure "
            f"shows in this process)"
        ) from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _heldout_indices(num_docs: int, fraction: float, count: int | None, seed: int) -> np.ndarray:
    k = int(count) if count is not None else int(round(num_docs * fraction))
    if k < 0 or k >= num_docs and num_docs > 0:
        raise ValueError(
            f"held-out size {k} must be >= 0 and below the number of documents in the corpus ({num_docs}; a blank "
            f"line or the end of a file ends a document); pass fewer held-out documents (--heldout-docs)"
        )
    rng = np.random.default_rng([seed, 0x4E1D])
    return np.sort(rng.choice(num_docs, size=k, replace=False)).astype(np.int64)


def prepare_corpus(
    inputs: Sequence[str | os.PathLike],
    tokenizer: Any,
    output_dir: str | os.PathLike,
    *,
    num_workers: int = 2,
    docs_per_shard: int = 2000,
    shard_bytes: int = 8 << 20,
    heldout_fraction: float = 0.0,
    heldout_docs: int | None = None,
    seed: int = 0,
    encoding: str = "utf-8",
    fallback_encoding: str | None = None,
    pattern: str = "*.txt",
    progress: bool = True,
) -> Path:
    """Tokenise text files into a sharded, memory-mappable corpus; returns ``output_dir``.

        >>> prepare_corpus(["data/corpus"], AlbertTokenizer.from_pretrained("albert-base-v2"),
        ...                Path("runs/corpus"), heldout_docs=200)                              # doctest: +SKIP

    ``heldout_docs`` (a count) or ``heldout_fraction`` picks held-out documents uniformly at random
    from ``seed``. A line that is not valid ``encoding`` raises :class:`CorpusEncodingError` naming
    the file and line, unless ``fallback_encoding`` is given (that line is then decoded with it and
    a warning is logged). Rerunning the same call resumes: finished shards are kept; a different call
    on a folder that holds another corpus raises :class:`CorpusFormatError` naming what differs. Inputs
    are identified by content (size and sha256 of each file) and by their names relative to the input
    they were found under, so the same files copied or mounted elsewhere reuse the corpus.
    """
    if heldout_docs is not None and heldout_fraction:
        raise ValueError("pass heldout_docs or heldout_fraction, not both")
    if not 0.0 <= heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    if docs_per_shard < 1 or shard_bytes < 1:
        raise ValueError("docs_per_shard and shard_bytes must be positive")
    output_dir = Path(output_dir)
    listed = _list_files(inputs, pattern)
    files = [path for path, _ in listed]
    for path in files:
        _check_text_file(path)
    vocab_size = int(tokenizer.vocab_size)
    dtype = "uint16" if vocab_size < 65536 else "int32"
    settings = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "inputs": _fingerprint(listed),
        "tokenizer": {"checksum": tokenizer_checksum(tokenizer), "vocab_size": vocab_size, "special_ids": special_ids(tokenizer)},
        "dtype": dtype,
        "docs_per_shard": docs_per_shard,
        "shard_bytes": shard_bytes,
        "encoding": encoding,
        "fallback_encoding": fallback_encoding,
        "heldout": {"fraction": heldout_fraction, "docs": heldout_docs, "seed": seed},
    }
    meta_path = output_dir / "meta.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        old_inputs = old.get("inputs") or []
        # A corpus from before content hashes is trusted on names and sizes only when finished;
        # an unfinished one is cheaper to redo than to vouch for.
        inputs_diff = _inputs_difference(old_inputs, settings["inputs"], files)
        if inputs_diff is None and _is_unhashed(old_inputs) and not old.get("complete"):
            inputs_diff = "an unfinished corpus from an older albertkit, without content hashes"
        diff = [k for k in settings if (inputs_diff is not None if k == "inputs" else old.get(k) != settings[k])]
        if diff and not old.get("complete"):
            # An unfinished preparation with other settings (a run that failed on an encoding error
            # and is retried with a fallback): its shards are of no use; start over.
            logger.warning("%s holds an unfinished corpus prepared with other %s; starting it again", output_dir, ", ".join(diff))
            shutil.rmtree(output_dir / "shards", ignore_errors=True)
            meta_path.unlink()
        elif diff:
            why = f": {inputs_diff}" if inputs_diff else ""
            raise CorpusFormatError(
                f"{output_dir} already holds a corpus prepared with different {', '.join(diff)}{why}; "
                f"prepare into another output folder, or delete {output_dir} to prepare it again from these inputs"
            )
        if old.get("complete"):
            if _is_unhashed(old_inputs):
                logger.info(
                    "%s was prepared by an older albertkit that fingerprinted its inputs by path, size and time: "
                    "their names and sizes match, their content was not checked; fingerprint upgraded to sha256",
                    output_dir,
                )
                atomic_write_text(meta_path, json.dumps({**old, "inputs": settings["inputs"]}, indent=1))
            logger.info("corpus in %s is already complete", output_dir)
            return output_dir

    docs = [doc for k, path in enumerate(files) for doc in _scan_documents(k, path)]
    if not docs:
        raise CorpusFormatError(f"no text in {', '.join(map(str, inputs))}: every file is empty or blank")
    plan = _plan_shards(docs, docs_per_shard, shard_bytes)
    heldout = _heldout_indices(len(docs), heldout_fraction, heldout_docs, seed)
    output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(output_dir / "heldout_documents.npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, heldout)

    names = [f"{k:05d}" for k in range(len(plan))]
    shard_infos: list[dict | None] = [None] * len(plan)
    for k, name in enumerate(names):
        info_path = output_dir / "shards" / name / "shard.json"
        if info_path.exists():
            shard_infos[k] = json.loads(info_path.read_text())
    pending = [(k, output_dir / "shards" / names[k], plan[k]) for k in range(len(plan)) if shard_infos[k] is None]
    if len(pending) < len(plan):
        logger.info("resuming: %d of %d shards already done", len(plan) - len(pending), len(plan))

    def write_meta(complete: bool) -> None:
        shards = [
            {"name": names[k], "first_document": sum(len(p) for p in plan[:k]), **(shard_infos[k] or {})}
            for k in range(len(plan))
            if shard_infos[k] is not None
        ]
        meta = {
            **settings,
            "complete": complete,
            "num_documents": len(docs),
            "num_shards": len(plan),
            "splits": {"train": len(docs) - len(heldout), "heldout": len(heldout)},
            "shards": shards,
        }
        atomic_write_text(meta_path, json.dumps(meta, indent=1))

    write_meta(complete=not pending)
    if pending:
        from tqdm.auto import tqdm

        total = sum(d.end - d.start for _, _, p in pending for d in p)
        started = time.perf_counter()
        bar = tqdm(total=total, unit="B", unit_scale=True, desc="tokenising corpus", disable=not progress)
        init_args = (tokenizer, files, encoding, fallback_encoding, dtype)
        workers = max(1, min(num_workers, len(pending)))
        try:
            for index, info, nbytes in _tokenize_pending(pending, init_args, workers):
                shard_infos[index] = info
                write_meta(complete=False)
                bar.update(nbytes)
        finally:
            bar.close()
        elapsed = time.perf_counter() - started
        logger.info("tokenised %.1f MB in %.1f s (%.2f MB/s)", total / 1e6, elapsed, total / 1e6 / max(elapsed, 1e-9))
        write_meta(complete=True)
    return output_dir


# ---------------------------------------------------------------------------------------------
# Reading it back
# ---------------------------------------------------------------------------------------------


class PretrainingCorpus:
    """Memory-mapped view of one split (``"train"`` or ``"heldout"``) of a prepared corpus.

        >>> corpus = PretrainingCorpus("runs/corpus", split="heldout")   # doctest: +SKIP
        >>> len(corpus), [s.tolist() for s in corpus.document(0)][:1]   # doctest: +SKIP

    Besides ``document(i)``, it exposes flat arrays for fast index building (global over all
    shards): ``sentence_starts`` / ``sentence_lengths`` (token positions), ``document_sentences``
    (int64 [len(self), 2]: first sentence and sentence count of each document of the split), and
    ``tokens(start, length)`` to read a token range.
    """

    def __init__(self, output_dir: str | os.PathLike, split: str = "train") -> None:
        self.path = Path(output_dir)
        meta_path = self.path / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{meta_path} not found: run prepare_corpus first")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT_NAME:
            raise CorpusFormatError(f"{meta_path} is not an albertkit pretraining corpus")
        if not self.meta.get("complete"):
            raise CorpusFormatError(f"{self.path} is incomplete: rerun prepare_corpus to finish it")
        if split not in ("train", "heldout"):
            raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
        self.split = split
        self.special_ids: dict[str, int] = self.meta["tokenizer"]["special_ids"]
        self.vocab_size: int = self.meta["tokenizer"]["vocab_size"]
        self.tokenizer_checksum: str = self.meta["tokenizer"]["checksum"]

        self._tokens: list[np.ndarray] = []
        starts, lengths, doc_first, doc_count = [], [], [], []
        token_base = sentence_base = 0
        self._token_bases = []
        for shard in self.meta["shards"]:
            folder = self.path / "shards" / shard["name"]
            tokens = np.load(folder / "tokens.npy", mmap_mode="r")
            sent = np.load(folder / "sentences.npy")
            docs = np.load(folder / "documents.npy")
            self._tokens.append(tokens)
            self._token_bases.append(token_base)
            starts.append(sent[:-1] + token_base)
            lengths.append(np.diff(sent))
            doc_first.append(docs[:-1] + sentence_base)
            doc_count.append(np.diff(docs))
            token_base += len(tokens)
            sentence_base += len(sent) - 1
        self._token_bases_arr = np.asarray(self._token_bases, dtype=np.int64)
        self.sentence_starts = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        self.sentence_lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        all_docs = np.stack([np.concatenate(doc_first), np.concatenate(doc_count)], axis=1) if doc_first else np.zeros((0, 2), np.int64)
        self.num_documents_total = len(all_docs)
        heldout = np.load(self.path / "heldout_documents.npy")
        in_heldout = np.zeros(len(all_docs), dtype=bool)
        in_heldout[heldout] = True
        self.document_ids = np.flatnonzero(in_heldout if split == "heldout" else ~in_heldout)
        self.document_sentences = all_docs[self.document_ids]

    def __len__(self) -> int:
        return len(self.document_ids)

    # Pickle by path (DataLoader workers under spawn, DDP): re-open the memory maps instead of
    # copying every token into the pickle.
    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "split": self.split}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["split"])  # type: ignore[misc]

    @property
    def num_tokens(self) -> int:
        first, count = self.document_sentences[:, 0], self.document_sentences[:, 1]
        cum = np.concatenate([[0], np.cumsum(self.sentence_lengths)])
        return int((cum[first + count] - cum[first]).sum())

    def tokens(self, start: int, length: int) -> np.ndarray:
        """Token ids at global positions [start, start + length) (one shard, i.e. one document)."""
        shard = int(np.searchsorted(self._token_bases_arr, start, side="right")) - 1
        local = start - self._token_bases[shard]
        return self._tokens[shard][local : local + length]

    def document(self, i: int) -> list[np.ndarray]:
        """Token id arrays of the sentences of document ``i`` of this split."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"document {i} out of range for {len(self)} documents")
        first, count = self.document_sentences[i]
        return [
            self.tokens(int(self.sentence_starts[s]), int(self.sentence_lengths[s]))
            for s in range(first, first + count)
        ]
