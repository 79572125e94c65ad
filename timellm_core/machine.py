"""What machine this is, in words a report can quote: the CPU model and its bfloat16 support."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def _cpuinfo_text() -> str:
    try:
        return CPUINFO.read_text()
    except OSError:  # not Linux, or no /proc
        return ""


def cpu_model_name() -> str:
    """"AMD EPYC 7B13", "Intel(R) Xeon(R) ..."; the platform's processor name where /proc/cpuinfo is absent."""
    for line in _cpuinfo_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo is absent)."""
    for line in _cpuinfo_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_bf16_instructions() -> bool | None:
    """AVX512-BF16 or AMX-BF16 present; None when the flags cannot be read."""
    flags = cpu_flags()
    if not flags:
        return None
    return bool(flags & {"avx512_bf16", "amx_bf16"})
