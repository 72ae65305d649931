"""The benchmark suite, one command: albertkit against each peer, like for like, as markdown tables.

    python -m bench.run_all --avx2 --write   # issue 12's suite + the forced-AVX2 forward table, into bench/RESULTS.md
    python -m bench.run_all            # the suite, printed only
    python -m bench.run_all --quick    # smaller shapes and fewer repeats, for development
    python -m bench.run_all --extras   # also the tokenizer and fine-tuning benchmarks

Parts: the fill-mask top-1 agreement of every low-precision path (bench/agreement.py), which the
bf16/int8 rows below must pass; encoder forward against transformers fp32/bf16/int8 and ONNX Runtime
fp32/int8 (bench/bench_forward.py); sentence embeddings (both sides given the same batches, in the
same order); the fill-mask pipeline (bench/bench_fill_mask.py); the pretraining step (run as a
subprocess, its table printed as it is); with ``--avx2``, bench_forward again in a subprocess with
torch, oneDNN and albertkit forced to AVX2 (ONNX Runtime has no such switch: its rows stay at the
CPU's own ISA). Every table starts with the date, command, CPU and load; the targets of issue 12 are
collected into one table at the end. ``--write`` puts the whole output into bench/RESULTS.md as the
section of this CPU (replacing that CPU's previous section, keeping the others).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import AVX2_ENV, Check, Row, format_table, fp32_check, header, interleaved, lowp_check, top1_check  # noqa: E402

SHARED = REPO.parent / "shared" / "data"

# Benchmark modules run as subprocesses: (file, arguments for --quick, arguments for the full run)
SUBSUITES = (("bench_pretraining.py", ["--quick", "--shapes", "2x64", "--repeats", "1"], ["--shapes", "32x128", "--repeats", "3"]),)
EXTRAS = (
    ("bench_tokenizer.py", ["--max-lines", "20000", "--repeat", "1"], []),
    ("bench_finetune.py", ["--quick"], []),
)


def corpus_sentences(n: int) -> list[str]:
    """``n`` prose lines (40..300 characters) from the State of the Union corpus, in file order."""
    out: list[str] = []
    for path in sorted((SHARED / "corpus" / "state_union").glob("*.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = " ".join(line.split())
            if 40 <= len(line) <= 300:
                out.append(line)
                if len(out) == n:
                    return out
    return out


def embedding_rows(quick: bool, agreement: dict[str, float] | None = None) -> list[Row]:
    """Mean-pooled sentence embeddings of corpus sentences, batches of 32, both sides given the same
    batches in the same order: length-sorted (what albertkit's features pipeline does), and corpus order."""
    from albertkit import AlbertModel
    from albertkit.fast import optimize
    from albertkit.tokenization import AlbertTokenizer

    from bench.peers import save_checkpoint, transformers_model

    n = 64 if quick else 256
    texts = corpus_sentences(n)
    tok = AlbertTokenizer.from_pretrained(str(SHARED / "albert-base-v2"))
    folder = save_checkpoint(Path(tempfile.mkdtemp(prefix="albertkit-emb-")) / "base", SHARED / "albert-base-v2" / "spiece.model")
    ours = AlbertModel.from_pretrained(str(folder)).eval()
    cands = {
        "ak fp32": optimize(copy.deepcopy(ours), "fp32"),
        "ak bf16": optimize(copy.deepcopy(ours), "bf16"),
        "hf fp32": transformers_model("AlbertModel", folder),
        "hf bf16": transformers_model("AlbertModel", folder, torch.bfloat16),
    }

    def batches(order: list[int]) -> list[dict[str, torch.Tensor]]:
        out = []
        for i in range(0, len(order), 32):
            enc = tok([texts[j] for j in order[i : i + 32]], padding=True, truncation=True, max_length=128, return_tensors="pt")
            out.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
        return out

    def embed(model, bs: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        vecs = []
        for b in bs:
            hidden = model(**b).last_hidden_state.float()
            m = b["attention_mask"].unsqueeze(-1).float()
            vecs.append((hidden * m).sum(1) / m.sum(1))
        return torch.cat(vecs)

    lengths = [len(ids) for ids in tok.encode_batch(texts)]
    orders = {"length-sorted": sorted(range(n), key=lengths.__getitem__), "corpus order": list(range(n))}
    rows: list[Row] = []
    with torch.inference_mode():
        first = batches(orders["length-sorted"])
        ref = embed(cands["hf fp32"], first)
        checks = {k: (fp32_check if k.endswith("fp32") else lowp_check)(k, embed(m, first), ref) for k, m in cands.items()}
        for k, name in (("ak bf16", "albertkit bf16"), ("hf bf16", "transformers bf16")):
            if agreement and name in agreement:
                checks[k] = Check.all(checks[k], top1_check(k, agreement[name]))
        for order_name, order in orders.items():
            bs = batches(order)
            t = interleaved({k: (lambda m=m: embed(m, bs)) for k, m in cands.items()}, repeats=1 if quick else 2)
            for a, b in (("ak fp32", "hf fp32"), ("ak bf16", "hf bf16")):
                rows.append(Row(f"{n} corpus sentences, {order_name} batches of 32 both sides: albertkit {a[3:]} vs transformers {b[3:]}",
                                "sent/s", n / t[a], n / t[b], higher_is_better=True, check=Check.all(checks[a], checks[b])))
    return rows


def _ratio(rows: list[Row], pattern: str) -> tuple[str, float | None]:
    """The printed ratio of the first row whose name matches ``pattern`` ("FAILED" / "-" / "1.23x")."""
    import re

    for r in rows:
        if re.search(pattern, r.name):
            if r.failed:
                return "FAILED", None
            return (f"{r.ratio:.2f}x", r.ratio) if r.ratio is not None else ("-", None)
    return "not measured", None


def _table_ratio(text: str, pattern: str) -> tuple[str, float | None]:
    """The ratio cell of a printed markdown row matching ``pattern`` (for the subprocess suites)."""
    import re

    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 3 and re.search(pattern, cells[0]):
            m = re.fullmatch(r"([0-9.]+)x", cells[3])
            return (cells[3], float(m.group(1))) if m else (cells[3], None)
    return "not measured", None


def targets_table(forward: list[Row], fill: list[Row], pretrain: str) -> str:
    """Issue 12's targets, each read from the rows above it: measured ratio and met / missed."""
    def row(target: str, bound: float, *found: tuple[str, float | None]) -> str:
        values = [v for _, v in found]
        met = "met" if values and all(v is not None and v >= bound for v in values) else "**missed or not measured**"
        return f"| {target} | {' / '.join(text for text, _ in found)} | {met} |"

    shapes = ("8x128", "32x128", "real32")
    lines = [
        "| target (this run) | measured | |",
        "|---|---|---|",
        row("fp32 >= 1.0x ORT fp32 at 8x128 / 32x128 / padded real", 1.0,
            *(_ratio(forward, rf"^\[{s}\] fp32: albertkit fp32 vs ORT fp32") for s in shapes)),
        row("fp32 >= 1.3x transformers fp32 at 32x128", 1.3, _ratio(forward, r"^\[32x128\] fp32: albertkit fp32 vs transformers fp32")),
        row("int8 (best albertkit int8) >= 1.0x best ORT int8 at 8x128 / 32x128", 1.0,
            *(_ratio(forward, rf"^\[{s}\] int8 target") for s in shapes[:2])),
        row("bf16 >= 1.3x transformers bf16 at 8x128", 1.3, _ratio(forward, r"^\[8x128\] bf16: albertkit bf16 vs transformers bf16")),
        row("fill-mask one sentence >= 2x the transformers pipeline's best", 2.0, _ratio(fill, r"^one sentence, best checked path")),
        row("fill-mask 256 sentences >= 2x", 2.0, _ratio(fill, r"sentences, both given the same length-sorted list, best checked path")),
        row("training 32x128 same work >= 1.3x tokens/s", 1.3, _table_ratio(pretrain, r"^32x128 same work.*tokens/s")),
        row("training 32x128 same work peak memory <= 0.75x (ratio >= 1.33x)", 1 / 0.75, _table_ratio(pretrain, r"^32x128 same work.*peak memory")),
    ]
    saving = _table_ratio(pretrain, r"^32x128 masked-positions saving.*tokens/s")[0], _table_ratio(pretrain, r"^32x128 masked-positions saving.*peak memory")[0]
    lines.append(f"| masked-positions saving (feature, not a target): tokens/s / memory | {saving[0]} / {saving[1]} | |")
    return "\n".join(lines)


def write_results(text: str, cpu_class: str) -> Path:
    """Put ``text`` into bench/RESULTS.md as the section of ``cpu_class`` (atomically; other sections kept)."""
    import re

    path = REPO / "bench" / "RESULTS.md"
    begin, end = f"<!-- run_all: {cpu_class} -->", f"<!-- /run_all: {cpu_class} -->"
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    block = f"{begin}\n{text.strip()}\n{end}"
    if begin in old and end in old:
        new = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, old, flags=re.S)
    else:  # after the title, before older sections
        head, sep, rest = old.partition("\n")
        new = f"{head}{sep}\n{block}\n{rest}"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)
    return path


def run_subsuite(name: str, args: list[str], env: dict[str, str] | None = None) -> str:
    path = REPO / "bench" / name
    if not path.is_file():
        return f"_{name}: not present in this checkout, skipped._"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(path), *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return f"_{name} failed (exit {proc.returncode}) after {took:.0f} s:_\n```\n{tail}\n```"
    return f"`python bench/{name} {' '.join(args)}` ({took:.0f} s)\n\n{proc.stdout.strip()}"


def main() -> None:
    parser = argparse.ArgumentParser(description="albertkit benchmark suite")
    parser.add_argument("--quick", action="store_true", help="smaller shapes, fewer repeats")
    parser.add_argument("--only", choices=["forward", "embeddings", "fill-mask", "others"], help="run one part")
    parser.add_argument("--extras", action="store_true", help="also the tokenizer and fine-tuning benchmarks")
    parser.add_argument("--avx2", action="store_true", help="also the forward table with torch/oneDNN/albertkit forced to AVX2")
    parser.add_argument("--write", action="store_true", help="write the output into bench/RESULTS.md (this CPU's section)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out: list[str] = []

    def emit(text: str = "") -> None:
        print(text)
        sys.stdout.flush()
        out.append(text)

    from albertkit.cpu import cpu_capability

    t0 = time.perf_counter()
    load0 = os.getloadavg()
    cpu_class = f"{_cpu_model()}, {cpu_capability().level}"
    emit(f"## Run of {time.strftime('%Y-%m-%d', time.gmtime())}, {cpu_class}: `python -m bench.run_all {' '.join(sys.argv[1:])}`"
         f"{' (quick)' if args.quick else ''}\n")
    emit(header())
    emit()
    agreement = None
    forward: list[Row] = []
    fill: list[Row] = []
    pretrain = ""
    if args.only in (None, "forward", "embeddings", "fill-mask"):
        from bench.agreement import mlm_top1_agreement

        agreement = mlm_top1_agreement(64 if args.quick else 1000)
        emit("### fill-mask top-1 agreement with transformers fp32 (albert-mini-en, real corpus sentences; bound >= 97%)\n")
        emit("| path | top-1 identical |\n|---|---:|")
        for name, value in agreement.items():
            emit(f"| {name} | {value:.1%}{'' if value >= 0.97 else ' (below the bound)'} |")
        emit()
    if args.only in (None, "forward"):
        from bench.bench_forward import run

        forward, note = run(quick=args.quick, agreement=agreement)
        emit(format_table(forward, "encoder forward (AlbertModel, albert-base-v2 shape, random weights)"))
        emit(f"\n{note}\n")
    if args.only in (None, "embeddings"):
        emit(format_table(embedding_rows(args.quick, agreement), "sentence embeddings (mean-pooled, batches of 32)"))
        emit()
    if args.only in (None, "fill-mask"):
        from bench.bench_fill_mask import run as fill_mask

        fill, note = fill_mask(quick=args.quick, n=32 if args.quick else 256, repeat=3 if args.quick else 15, agreement=agreement)
        emit(format_table(fill, "fill-mask pipeline (albert-base-v2 shape, random weights)"))
        emit(f"\n{note}\n")
    if args.only in (None, "others"):
        for name, quick_args, full_args in SUBSUITES + (EXTRAS if args.extras else ()):
            emit(f"### {name}\n")
            text = run_subsuite(name, quick_args if args.quick else full_args)
            if name == "bench_pretraining.py":
                pretrain = text
            emit(text)
            emit()
    if args.avx2:
        shapes = "1x16,real8" if args.quick else "8x128,real32"
        emit(f"### forced AVX2: {' '.join(f'{k}={v}' for k, v in AVX2_ENV.items())} (ONNX Runtime rows at the CPU's own ISA)\n")
        emit(run_subsuite("bench_forward.py", ["--shapes", shapes, "--repeats", "2" if args.quick else "3", "--agreement"], AVX2_ENV))
        emit()
    emit("### Targets of issue 12 against this run\n")
    emit(targets_table(forward, fill, pretrain))
    emit()
    load1 = os.getloadavg()
    emit(f"_suite took {time.perf_counter() - t0:.0f} s; load average (1, 5, 15 min) before: "
         f"{' '.join(f'{x:.2f}' for x in load0)}, after: {' '.join(f'{x:.2f}' for x in load1)}_")
    if args.write:
        print(f"written to {write_results(chr(10).join(out), cpu_class + (' quick' if args.quick else ''))}", file=sys.stderr)


def _cpu_model() -> str:
    from bench.common import _lscpu

    return _lscpu().get("Model name", "unknown CPU")


if __name__ == "__main__":
    main()
