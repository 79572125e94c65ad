"""Which precision the fast path runs the frozen LLM in, chosen per machine so that fast is never slower.

The speed of bfloat16 is a property of the processor, not of the code. A CPU with AVX512-BF16 or
AMX multiplies bf16 matrices 2-3x faster than float32; one without them converts every element
and can be 20-50x slower (measured on an AMD EPYC Zen 3: 1.1 against 52.6 GFLOP/s). So:

- CPU: a short matrix-product probe at the LLM's shapes (about a second, once per machine, cached
  in ``~/.cache/timellm_core/precision.json`` or ``$TIMELLM_CACHE_DIR``, keyed by the CPU model,
  torch version and thread count) times float32 against bfloat16; bf16 is used only where it is clearly quicker
  (``BF16_MARGIN``), else the fast path keeps float32 and its other savings (compact prompt
  numbers, a quicker dropout draw, no MLP recomputation).
- CUDA: bfloat16 where the GPU supports it, else float16 with a loss scaler (older GPUs such as
  the V100 lack bf16), else float32.

``TIMELLM_FAST_PRECISION`` (``bf16``, ``fp16``, ``fp32``) overrides the choice, e.g. to compare.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from timellm_core.errors import ConfigError
from timellm_core.machine import cpu_model_name

BF16_MARGIN = 1.15  # bf16 must multiply at least this much faster than float32 to be chosen
PROBE_SHAPE = (256, 576, 1536)  # (rows, hidden, intermediate): SmolLM2's MLP over a block of patch rows
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclass(frozen=True)
class FastPrecision:
    """The fast path's compute precision and why (written to a run's config.json)."""

    name: str  # "bf16" | "fp16" | "fp32"
    reason: str  # one sentence a user can read
    loss_scaling: bool = False  # fp16 needs a gradient scaler in training

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.name]

    @property
    def lowered(self) -> bool:
        """Below float32: the LLM runs on lower-precision weight copies under autocast."""
        return self.name != "fp32"

    def as_dict(self) -> dict:
        return asdict(self)


def choose_fast_precision(device: torch.device | str, *, cache_path: Path | None = None) -> FastPrecision:
    """The quickest precision for the fast path on ``device`` (see the module docstring)."""
    device = torch.device(device)
    override = os.environ.get("TIMELLM_FAST_PRECISION", "").strip().lower()
    if override:
        if override not in _DTYPES:
            raise ConfigError(f"TIMELLM_FAST_PRECISION must be bf16, fp16 or fp32, not {override!r}.")
        if override == "fp16" and device.type != "cuda":
            raise ConfigError("TIMELLM_FAST_PRECISION=fp16 needs a CUDA GPU; use bf16 or fp32 on a CPU.")
        return FastPrecision(override, "set by TIMELLM_FAST_PRECISION", loss_scaling=override == "fp16")
    if device.type == "cuda":
        return _cuda_precision(device)
    if device.type == "cpu":
        return _cpu_precision(cache_path or default_cache_path())
    return FastPrecision("fp32", f"no lower precision is tried on {device.type} devices")


def _cuda_precision(device: torch.device) -> FastPrecision:
    name = torch.cuda.get_device_name(device)
    if torch.cuda.is_bf16_supported():
        return FastPrecision("bf16", f"{name} supports bfloat16")
    major, _minor = torch.cuda.get_device_capability(device)
    if major >= 6:
        return FastPrecision("fp16", f"{name} lacks bfloat16; float16 with a loss scaler", loss_scaling=True)
    return FastPrecision("fp32", f"{name} has neither bfloat16 nor fast float16")


def _cpu_precision(cache_path: Path) -> FastPrecision:
    rates = cached_cpu_rates(cache_path)
    ratio = rates["bf16"] / rates["fp32"]
    measured = f"bf16 {rates['bf16']:.1f} vs fp32 {rates['fp32']:.1f} GFLOP/s on this CPU"
    if ratio >= BF16_MARGIN:
        return FastPrecision("bf16", f"bfloat16 matrix products are {ratio:.1f}x faster ({measured})")
    return FastPrecision("fp32", f"bfloat16 matrix products are not faster here ({measured}), so the fast "
                                 "path keeps float32")


def default_cache_path() -> Path:
    """$TIMELLM_CACHE_DIR/precision.json, else ~/.cache/timellm_core/precision.json."""
    base = os.environ.get("TIMELLM_CACHE_DIR") or str(Path.home() / ".cache" / "timellm_core")
    return Path(base) / "precision.json"


def probe_key() -> str:
    """What the probe's answer depends on: the processor, torch's build and the threads it uses."""
    return f"{cpu_model_name()} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def cached_cpu_rates(cache_path: Path) -> dict[str, float]:
    """{"fp32": GFLOP/s, "bf16": GFLOP/s} for this machine, measured once and kept in ``cache_path``."""
    key = probe_key()
    try:
        cached = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cached = {}
    if not isinstance(cached, dict):
        cached = {}
    entry = cached.get(key)
    if isinstance(entry, dict) and all(isinstance(entry.get(name), (int, float)) and entry[name] > 0
                                       for name in ("fp32", "bf16")):
        return {"fp32": float(entry["fp32"]), "bf16": float(entry["bf16"])}
    rates = probe_cpu_rates()
    cached[key] = rates
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(cached, indent=1))
        temporary.replace(cache_path)
    except OSError:
        pass  # a read-only home: the probe simply runs again next time
    return rates


def probe_cpu_rates(shape: tuple[int, int, int] = PROBE_SHAPE, budget_s: float = 0.5) -> dict[str, float]:
    """GFLOP/s of (rows, k) @ (k, n) in float32 and bfloat16: best of a few products, at most ~``budget_s``
    each. A bf16 product that is already several times slower than float32 at its first timing is
    not repeated: on CPUs without bf16 instructions one product takes about a second."""
    rows, k, n = shape
    generator = torch.Generator().manual_seed(0)
    a32, b32 = torch.randn(rows, k, generator=generator), torch.randn(k, n, generator=generator)
    flops = 2 * rows * k * n
    best: dict[str, float] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = a32.to(dtype), b32.to(dtype)
        if name == "fp32":
            torch.mm(a, b)  # warm-up: kernel selection, first-touch allocation
        fastest, spent, repeats = float("inf"), 0.0, 0
        while repeats < 2 or (spent < budget_s and repeats < 10):
            started = time.perf_counter()
            torch.mm(a, b)
            elapsed = time.perf_counter() - started
            fastest, spent, repeats = min(fastest, elapsed), spent + elapsed, repeats + 1
            if name == "bf16" and fastest > 3 * best["fp32"] and repeats >= 2:
                break  # a clear loss (the first timing may include bf16's own warm-up)
        best[name] = fastest
    return {name: flops / max(seconds, 1e-9) / 1e9 for name, seconds in best.items()}
