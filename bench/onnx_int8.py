"""albertkit's ONNX Runtime int8 graph against the ORT int8 peers, alone: wall and CPU time, per-operator time.

    PYTHONPATH=src python -m bench.onnx_int8 [--shapes 8x128,32x128] [--repeats 5]

The quick, focused version of bench_forward's int8 rows (issue 12): the same random albert-base-v2-shaped
checkpoint, albertkit's ``export_onnx(int8=True)`` (ONNX Runtime's transformer optimizer, then dynamic
int8) and, for reference, the same without the optimizer (``fuse=False``), against bench/peers.py's
ORT int8 (all MatMuls) and ORT int8 encoder-only. Every candidate is checked first (hidden-state
cosine with ORT fp32 >= 0.99 at every token), then run in alternation; medians of wall time and of
this process's CPU time are printed. On a loaded machine the CPU-time column is the steadier one:
no session spins, so CPU time is the work each graph does. Last, ONNX Runtime's own profiler sums
the kernel time per operator type for albertkit's graph and the best peer's (which ops the time goes to).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_forward import make_inputs  # noqa: E402

SHARED = REPO.parent / "shared" / "data"


def op_profile(path: Path, feeds: dict[str, torch.Tensor], runs: int = 2, disabled: tuple[str, ...] = ()) -> dict[str, float]:
    """Milliseconds per run spent in each operator type (ONNX Runtime's profiler, pinned like the bench;
    ``disabled``: session fusions turned off, as :class:`albertkit.fast.OrtModel` does)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_profiling = True
    options.profile_file_prefix = str(path.with_suffix(""))
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(disabled))
    names = {i.name for i in session.get_inputs()}
    x = {k: v.numpy() for k, v in feeds.items() if k in names}
    session.run(None, x)
    for _ in range(runs):
        session.run(None, x)
    trace = Path(session.end_profiling())
    totals: collections.Counter[str] = collections.Counter()
    for event in json.loads(trace.read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            totals[event["args"]["op_name"]] += event["dur"] / 1e3 / (runs + 1)
    trace.unlink()
    return dict(totals.most_common())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="8x128,32x128")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from albertkit import AlbertModel
    from albertkit.fast import OrtModel, export_onnx

    from bench.common import header
    from bench.peers import ort_peers, save_checkpoint

    work = Path(tempfile.mkdtemp(prefix="albertkit-onnx-int8-"))
    folder = save_checkpoint(work / "checkpoint", SHARED / "albert-base-v2" / "spiece.model", cls_name="AlbertModel")
    ours = AlbertModel.from_pretrained(str(folder)).eval()
    files = {"ak onnx-int8": export_onnx(ours, work / "ak-int8.onnx", int8=True),
             "ak onnx-int8 unfused": export_onnx(ours, work / "ak-int8-unfused.onnx", int8=True, fuse=False)}
    models = {k: OrtModel(p) for k, p in files.items()}
    fp32, int8, int8_enc, note = ort_peers(folder, work)
    cands = {**{k: (lambda m=m, **x: m(**x).last_hidden_state) for k, m in models.items()}, "ort int8": int8, "ort int8 enc": int8_enc}
    print(header())
    print(f"\n{note}\n")
    print("| shape | candidate | check (min cos vs ORT fp32) | wall ms | CPU ms | ORT int8 best / this, wall | CPU |")
    print("|---|---|---|---:|---:|---:|---:|")
    for spec in args.shapes.split(","):
        _, x = make_inputs(spec)
        keep = x["attention_mask"].bool()
        ref = fp32(**x)[keep]
        cos = {k: float(torch.nn.functional.cosine_similarity(f(**x)[keep], ref, dim=-1).min()) for k, f in cands.items()}
        wall: dict[str, list[float]] = {k: [] for k in cands}
        cpu: dict[str, list[float]] = {k: [] for k in cands}
        for _ in range(args.repeats):
            for k, f in cands.items():
                t, c = time.perf_counter(), time.process_time()
                f(**x)
                wall[k].append((time.perf_counter() - t) * 1e3)
                cpu[k].append((time.process_time() - c) * 1e3)
        w = {k: statistics.median(v) for k, v in wall.items()}
        c = {k: statistics.median(v) for k, v in cpu.items()}
        best_w = min(w["ort int8"], w["ort int8 enc"])
        best_c = min(c["ort int8"], c["ort int8 enc"])
        for k in cands:
            ok = "ok" if cos[k] >= 0.99 else "FAILED"
            print(f"| {spec} | {k} | {ok} {cos[k]:.4f} | {w[k]:.0f} | {c[k]:.0f} | {best_w / w[k]:.2f}x | {best_c / c[k]:.2f}x |")
    _, x = make_inputs(args.shapes.split(",")[0])
    peer = work / "hf-AlbertModel-int8-encoder.onnx"
    print(f"\nONNX Runtime profiler, ms per run by operator type at {args.shapes.split(',')[0]}:")
    from albertkit.fast import SLOW_CPU_FUSIONS

    for name, path, disabled in (("ak onnx-int8", files["ak onnx-int8"], SLOW_CPU_FUSIONS), ("ort int8 enc", peer, ())):
        prof = op_profile(path, x, disabled=disabled)
        print(f"- {name}: total {sum(prof.values()):.0f}; " + ", ".join(f"{k} {v:.0f}" for k, v in list(prof.items())[:8]))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
