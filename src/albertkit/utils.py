"""Small shared helpers: atomic file writes, logging setup, the one padding rule."""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

__all__ = ["pad_lists", "check_positive", "ordinary_permissions", "atomic_write_text", "atomic_write_bytes", "atomic_path", "atomic_folder", "get_logger"]


def pad_lists(rows: Sequence[list], value: Any, length: int | None = None, multiple_of: int | None = None) -> tuple[list[list], int]:
    """Right-pad ``rows`` with ``value`` to one width: ``length`` (default: the longest row), rounded
    up to a multiple of ``multiple_of``. Returns the padded rows (new lists) and the width. The one
    padding rule: the tokenizer's ``pad_rows`` and ``batching.pad`` both call it.

        >>> pad_lists([[2, 5, 3], [2, 3]], 0, multiple_of=4)
        ([[2, 5, 3, 0], [2, 3, 0, 0]], 4)
    """
    width = max((len(r) for r in rows), default=0) if length is None else length
    if multiple_of is not None and multiple_of > 1:
        width = multiple_of * math.ceil(width / multiple_of)
    return [list(r) + [value] * (width - len(r)) for r in rows], width


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def check_positive(allow_zero: bool = False, names: dict[str, str] | None = None, **values: float | None) -> None:
    """Refuse zero / negative / non-numeric settings up front, naming the command-line flag.

    A batch size of 0 must not quietly become a default, nor fail after an hour of preparation:

        >>> check_positive(batch_size=32, max_steps=None)
        >>> check_positive(batch_size=0)
        Traceback (most recent call last):
        ValueError: --batch-size must be positive, got 0
    """
    for name, value in values.items():
        if value is None:
            continue
        flag = (names or {}).get(name, "--" + name.replace("_", "-"))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(f"{flag} must be a finite number, got {value!r}")
        if value < 0 or (value == 0 and not allow_zero):
            raise ValueError(f"{flag} must be {'>= 0' if allow_zero else 'positive'}, got {value}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ordinary_permissions(path: str | os.PathLike) -> None:
    """rw for the owner, read for others as the umask allows (some writers create files 0600)."""
    os.chmod(path, 0o666 & ~_umask())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed over ``target``.

    A crash before the rename leaves ``target`` untouched (old content or absent).

        >>> with atomic_path("out.json") as tmp:  # doctest: +SKIP
        ...     tmp.write_text("{}")
    """
    target = Path(target)
    if target.is_dir():  # else os.replace fails naming the temporary file, not what the user gave
        raise IsADirectoryError(f"{target} is a folder; give a file name to write")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    ordinary_permissions(tmp)  # mkstemp makes 0600
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    import ctypes
    import errno

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or a libc without it
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.ENOTSUP):  # a filesystem without exchange
        return False
    raise OSError(code, os.strerror(code), str(b))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # the kept file as it is, without copying (a 1.5 GB file beside an 18 KB save)
    except OSError:
        shutil.copy2(src, dst)


@contextmanager
def atomic_folder(target: str | os.PathLike, exclude: set[str] | frozenset[str] = frozenset()) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``target`` as a whole.

    Files already in ``target`` that the new folder does not write are kept (hard-linked in, so
    large files cost nothing), so saving a model into a folder that holds a tokenizer does not lose
    the tokenizer. Names in ``exclude`` are not carried over. On Linux the old and new folders are
    exchanged in one rename, so ``target`` never goes missing; elsewhere two renames leave a
    moment without it (the old copy survives as ``.NAME.old-PID`` if the process dies there).

        >>> with atomic_folder("my-model") as tmp:  # doctest: +SKIP
        ...     (tmp / "config.json").write_text("{}")
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
        if target.exists():
            if not target.is_dir():
                raise NotADirectoryError(f"{target} exists and is not a folder")
            for item in target.iterdir():
                dest = tmp / item.name
                if item.name not in exclude and not dest.exists():
                    if item.is_dir():
                        shutil.copytree(item, dest, copy_function=_link_or_copy)
                    else:
                        _link_or_copy(str(item), str(dest))
            if _exchange(tmp, target):  # tmp now holds the old folder; the finally removes it
                _fsync_dir(target.parent)
                return
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
