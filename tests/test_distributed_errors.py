"""A process of a torchrun run whose peer stopped on an error says so in one line, not "a bug".

When rank 0 exits on a user error (exit 2, e.g. a corpus mismatch), rank 1's next collective fails
inside gloo with "Connection closed by peer". That used to be reported as "internal error ... (a
bug in albertkit ...)". The classification is checked on gloo's real message, and end to end with
two real gloo processes on localhost (forked from this one: ~1 s, no torchrun, no new interpreter).
"""

from __future__ import annotations

import argparse
import io
import logging
import multiprocessing
import os
import socket
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import torch.distributed as dist

from albertkit import cli
from albertkit.distributed import peer_stopped, peer_stopped_message

# Rank 1's RuntimeError when rank 0 exited during a barrier (torch 2.13, gloo TCP transport).
GLOO_PEER_CLOSED = (
    "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer "
    "[127.0.0.1]:58089. This is typically caused by a remote worker crashing. Check the logs of the remote "
    "worker before reporting an error. GLHF! \U0001f3d6\ufe0f"
)
PEER_LINE = "another process of this distributed run stopped (see its error above); stopping too"


def test_gloo_peer_closed_is_recognised_narrowly() -> None:
    assert peer_stopped(RuntimeError(GLOO_PEER_CLOSED))
    assert peer_stopped(dist.DistBackendError(GLOO_PEER_CLOSED))  # the RuntimeError subclass newer torch raises
    assert peer_stopped(RuntimeError("[../gloo/transport/tcp/pair.cc:598] Read error [10.0.0.2]:40123: Connection reset by peer"))
    try:
        try:
            raise RuntimeError(GLOO_PEER_CLOSED)
        except RuntimeError as err:
            raise ValueError("step 12 failed") from err
    except ValueError as wrapped:
        assert peer_stopped(wrapped)
    # Not a peer that went away: these stay errors or bugs of this process.
    assert not peer_stopped(ValueError(GLOO_PEER_CLOSED))
    assert not peer_stopped(RuntimeError("Connection closed by peer"))  # not from gloo
    assert not peer_stopped(RuntimeError("[../gloo/transport/tcp/pair.cc:446] Timed out waiting 1800000ms for recv operation"))
    assert not peer_stopped(RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x8 and 7x8)"))
    try:
        raise RuntimeError("a bug while handling it")
    except RuntimeError as bug:
        bug.__context__ = RuntimeError(GLOO_PEER_CLOSED)  # implicit context only: still a bug
        assert not peer_stopped(bug)


def _parser_raising(exc: BaseException | None, action=None) -> argparse.ArgumentParser:
    """albertkit's top-level options and one `pretrain` command that raises ``exc`` (or runs ``action``)."""

    def run(args: argparse.Namespace) -> int:
        if action is not None:
            return action()
        raise exc

    parser = argparse.ArgumentParser(prog="albertkit")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_subparsers(dest="command").add_parser("pretrain").set_defaults(func=run)
    return parser


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, exc: BaseException) -> tuple[int, str]:
    monkeypatch.setattr(cli, "build_parser", lambda: _parser_raising(exc))
    root = logging.getLogger()
    handlers = root.handlers[:]
    try:
        code = cli.main(["pretrain"])
    finally:
        root.handlers[:] = handlers
    return code, capsys.readouterr().err


def test_cli_reports_a_stopped_peer_in_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setenv("RANK", "1")
    code, err = _cli(monkeypatch, capsys, RuntimeError(GLOO_PEER_CLOSED))
    assert (code, err) == (1, f"albertkit pretrain: rank 1: {PEER_LINE}\n")
    # Any other RuntimeError is still reported as a bug.
    code, err = _cli(monkeypatch, capsys, RuntimeError("index 7 is out of bounds"))
    assert code == 1 and "internal error: RuntimeError: index 7 is out of bounds (a bug in albertkit" in err
    monkeypatch.delenv("RANK")
    assert peer_stopped_message(RuntimeError(GLOO_PEER_CLOSED)) == PEER_LINE  # no rank known: none named


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, port: int, folder: Path) -> None:
    """One process of a 2-process gloo run, through albertkit's CLI; rank 0 fails on a user error."""
    os.environ.update(RANK=str(rank), WORLD_SIZE="2")
    sys.stderr = io.StringIO()
    code = 99
    try:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=timedelta(seconds=20)
        )
        dist.barrier()  # both joined

        def rank0() -> int:
            raise ValueError("runs/corpus already holds a corpus prepared with different inputs")

        def rank1() -> int:
            dist.barrier()  # rank 0 exits instead of joining
            return 0

        cli.build_parser = lambda: _parser_raising(None, rank0 if rank == 0 else rank1)
        code = cli.main(["pretrain"])
    except BaseException as exc:  # anything escaping main() is a test failure, shown by the parent
        sys.stderr.write(f"escaped main(): {exc!r}\n")
    finally:
        (folder / f"rank{rank}.txt").write_text(f"{code}\n{sys.stderr.getvalue()}")
        os._exit(0)  # no pytest teardown in a forked child; the exit status is in the file


def test_two_gloo_processes_one_fails_the_other_says_peer_stopped(tmp_path) -> None:
    ctx = multiprocessing.get_context("fork")  # torch is already imported here: ~0.5 s, not 2 x 4 s
    port = _free_port()
    procs = [ctx.Process(target=_rank_main, args=(rank, port, tmp_path)) for rank in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    for p in procs:
        if p.is_alive():
            p.kill()
    reports = {}
    for rank in range(2):
        code, _, err = (tmp_path / f"rank{rank}.txt").read_text().partition("\n")
        reports[rank] = (int(code), err)
    assert reports[0] == (2, "albertkit pretrain: error: runs/corpus already holds a corpus prepared with different inputs\n")
    assert reports[1] == (1, f"albertkit pretrain: rank 1: {PEER_LINE}\n")
