"""What this CPU can do, in one place: the capability class every fast path is chosen by.

    >>> from albertkit.cpu import cpu_capability
    >>> cap = cpu_capability()
    >>> cap.level in ("amx", "avx512_bf16", "avx512", "avx2", "default", "aarch64")
    True

Three sources are combined, and the lowest wins:

1. What the CPU has (``/proc/cpuinfo`` flags on Linux, ``platform.machine()`` elsewhere).
2. What torch will dispatch to: ``torch.backends.cpu.get_cpu_capability()``, which honours
   ``ATEN_CPU_CAPABILITY``, and oneDNN's bf16 check (``torch.ops.mkldnn._is_mkldnn_bf16_supported``),
   which honours ``ONEDNN_MAX_CPU_ISA``. oneDNN's check alone is not "native bf16": it is also true on
   AVX-512 CPUs without AVX512-BF16, where oneDNN emulates bf16 (slower than fp32).
3. ``ALBERTKIT_CPU_CAPABILITY`` (``avx2``, ``avx512``, ``avx512_bf16`` or ``amx``), albertkit's own
   override, so that the lower classes can be tested on any machine. It can only lower the class:
   asking for AMX on a CPU without it would crash in oneDNN.

``ATEN_CPU_CAPABILITY=avx2`` and ``ONEDNN_MAX_CPU_ISA=AVX2`` lower the class too: with them set,
oneDNN refuses to pack bf16 weights, which is why those paths must know the class before they run.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import warnings
from dataclasses import dataclass

import torch

__all__ = ["CpuCapability", "cpu_capability", "warn_bf16_slow", "LEVELS", "OVERRIDE_ENV"]

logger = logging.getLogger(__name__)

OVERRIDE_ENV = "ALBERTKIT_CPU_CAPABILITY"
# x86-64 classes from lowest to highest. "default" is an x86-64 CPU without AVX2.
LEVELS = ("default", "avx2", "avx512", "avx512_bf16", "amx")
# ONEDNN_MAX_CPU_ISA values (oneDNN's names) -> the highest class they allow.
_ONEDNN_ISA = {
    "SSE41": "default",
    "AVX": "default",
    "AVX2": "avx2",
    "AVX2_VNNI": "avx2",
    "AVX2_VNNI_2": "avx2",
    "AVX512_CORE": "avx512",
    "AVX512_CORE_VNNI": "avx512",
    "AVX512_CORE_BF16": "avx512_bf16",
    "AVX512_CORE_FP16": "avx512_bf16",
    "AVX10_1_512": "avx512_bf16",
    "AVX512_CORE_AMX": "amx",
    "AVX512_CORE_AMX_FP16": "amx",
    "AVX10_1_512_AMX": "amx",
    "AVX10_1_512_AMX_FP16": "amx",
    "ALL": "amx",
    "DEFAULT": "amx",
}


@dataclass(frozen=True)
class CpuCapability:
    """The capability class of this CPU and the facts the fast paths need from it.

    ``level``: ``"amx"``, ``"avx512_bf16"``, ``"avx512"``, ``"avx2"``, ``"default"`` (x86-64 without
    AVX2) or ``"aarch64"``. ``native_bf16``: bf16 GEMMs run in hardware (AMX, AVX512-BF16,
    AVX-NE-CONVERT, or aarch64 BF16) and oneDNN packs bf16 weights, so bf16 beats fp32.
    ``vnni``: u8 x s8 dot products without the 16-bit saturation of plain AVX2 (ONNX Runtime's int8
    then keeps int8 weights, not U8U8). ``source`` names what set the level: ``cpu``, or the variable
    that forced it down.
    """

    level: str
    native_bf16: bool
    vnni: bool
    source: str

    def describe(self) -> str:
        bf16 = "native bf16" if self.native_bf16 else "no native bf16"
        return f"{self.level} ({bf16}, {'VNNI' if self.vnni else 'no VNNI'}; set by {self.source})"


def _cpu_flags() -> set[str]:
    """The feature flags the kernel reports for the first CPU (empty where /proc/cpuinfo is absent)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        pass
    return set()


def _hardware_level(flags: set[str], aten: str) -> str:
    if not flags:  # no /proc/cpuinfo (macOS, Windows): all we know is torch's dispatch level
        return {"AVX512": "avx512", "AVX2": "avx2"}.get(aten, "default")
    if {"amx_bf16", "amx_tile"} <= flags:
        return "amx"
    if {"avx512_bf16", "avx512bw", "avx512vl"} <= flags:
        return "avx512_bf16"
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return "avx512"
    return "avx2" if "avx2" in flags else "default"


def _rank(level: str) -> int:
    return LEVELS.index(level)


def _detect() -> CpuCapability:
    flags = _cpu_flags()
    # oneDNN's check honours ONEDNN_MAX_CPU_ISA; it is false where oneDNN refuses to pack bf16 weights.
    onednn_bf16 = bool(
        torch.backends.mkldnn.is_available()
        and getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()
    )
    if platform.machine().lower() in ("aarch64", "arm64"):
        return CpuCapability("aarch64", onednn_bf16 and "bf16" in flags, "asimddp" in flags, "cpu")

    aten = torch.backends.cpu.get_cpu_capability().upper()  # honours ATEN_CPU_CAPABILITY
    level, source = _hardware_level(flags, aten), "cpu"
    limits = [("ATEN_CPU_CAPABILITY", {"AVX2": "avx2", "DEFAULT": "default", "NO AVX": "default"}.get(aten))]
    isa = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    if isa:
        limits.append(("ONEDNN_MAX_CPU_ISA", _ONEDNN_ISA.get(isa)))
    forced = os.environ.get(OVERRIDE_ENV, "").strip().lower()
    if forced:
        if forced not in LEVELS:
            raise ValueError(f"{OVERRIDE_ENV}={forced!r}: use one of {', '.join(LEVELS)}")
        if _rank(forced) > _rank(level):
            logger.warning("%s=%s ignored: this CPU is %s, a class can only be forced down", OVERRIDE_ENV, forced, level)
        limits.append((OVERRIDE_ENV, forced))
    for name, limit in limits:
        if limit is not None and _rank(limit) < _rank(level):
            level, source = limit, name
    native_bf16 = onednn_bf16 and (
        _rank(level) >= _rank("avx512_bf16") or (level == "avx2" and not forced and "avx_ne_convert" in flags)
    )
    vnni = ("avx512_vnni" in flags and _rank(level) >= _rank("avx512")) or (
        "avx_vnni" in flags and level == "avx2" and source == "cpu"
    )
    return CpuCapability(level, native_bf16, vnni, source)


@functools.lru_cache(maxsize=None)
def _cached(key: tuple[str, ...]) -> CpuCapability:
    cap = _detect()
    logger.debug("CPU capability: %s", cap.describe())
    return cap


def cpu_capability() -> CpuCapability:
    """This CPU's capability class (cached per value of the environment variables that force it)."""
    env = (OVERRIDE_ENV, "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
    return _cached(tuple(os.environ.get(name, "") for name in env))


_warned_bf16 = False


def warn_bf16_slow() -> None:
    """Say once per process that bf16 runs on plain (emulating) kernels here, slower than fp32."""
    global _warned_bf16
    if not _warned_bf16 and not cpu_capability().native_bf16:
        _warned_bf16 = True
        warnings.warn(
            f"bf16 on this CPU ({cpu_capability().describe()}) has no native bf16 GEMMs: it runs correctly "
            "on plain torch kernels but slower than fp32; use fp32 or int8 (or fast='auto') for speed",
            RuntimeWarning,
            stacklevel=3,
        )
