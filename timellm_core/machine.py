"""What machine this is, in words a report can quote: the CPU model and its bfloat16 support; and how
much memory this process has used at most."""

from __future__ import annotations

import functools
import platform
import sys
from pathlib import Path

try:
    import resource
except ImportError:  # not a Unix: no peak memory figure
    resource = None

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


def process_peak_rss_bytes() -> int | None:
    """This process's peak resident memory so far (ru_maxrss), in bytes; None where it cannot be read."""
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB, macOS bytes
