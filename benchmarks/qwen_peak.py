"""A training step's memory high-water mark on real Qwen 2.5, measured with torch's profiler; planner alongside.

    .venv/bin/python benchmarks/qwen_peak.py [--model qwen2.5-0.5b] [--layers 6] [--batch 8] [--four_bit]

One process: load, one training step (Adam's moments are created), then a second step under
``torch.profiler`` with ``profile_memory=True``, which records every tensor allocation and release
on the CPU. From those: the live bytes when the forward pass ends, the highest point in each phase
(forward, backward, optimiser) above what lived before the step (weights, parameters, Adam's
moments), and the step's peak. The planner's ``peak_bytes`` less what persists is the figure to
compare. Writes benchmarks/qwen_peak.json; ``benchmarks/qwen.py --render`` puts it in qwen.md.
Settings as in qwen.py (the seed's: 7 channels, T 512, pred 96, d_model 32, d_ff 32, 1000 prototypes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def measure_peak(name: str, layers: int, batch: int, four_bit: bool) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from qwen import seed_step_parts
    from timellm_core.backbones import load_backbone
    from timellm_core.config import BackboneConfig

    torch.manual_seed(0)
    backbone = load_backbone(BackboneConfig(name=name, llm_layers=layers, load_in_4bit=four_bit), device="cpu")
    model, optimizer, x, target = seed_step_parts(backbone, batch)
    with torch.no_grad():
        _, trace = model(x[:1], trace=True)
    prompt_tokens = max(len(ids) for ids in trace.prompt_token_ids)

    def step() -> None:
        with record_function("phase:forward"):
            loss = torch.nn.functional.mse_loss(model(x), target)
        with record_function("phase:backward"):
            loss.backward()
        with record_function("phase:optimizer"):
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    start = time.perf_counter()
    step()
    first_step_s = time.perf_counter() - start
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step()
    events = list(profiler.profiler.kineto_results.events())
    phases = {event.name().split(":")[1]: (event.start_ns(), event.end_ns()) for event in events
              if event.name().startswith("phase:")}
    changes = sorted((event.start_ns(), event.nbytes()) for event in events if event.name() == "[memory]")
    live = peak = 0
    live_after_forward = None
    phase_peaks = {phase: 0 for phase in phases}
    for moment, change in changes:
        if live_after_forward is None and moment > phases["forward"][1]:
            live_after_forward = live
        live += change
        peak = max(peak, live)
        for phase, (begin, end) in phases.items():
            if begin <= moment <= end:
                phase_peaks[phase] = max(phase_peaks[phase], live)
    return {"model": name, "layers": layers, "precision": "nf4" if four_bit else "fp32", "batch": batch,
            "prompt_tokens": prompt_tokens, "first_step_s": first_step_s,
            "live_after_forward_bytes": live_after_forward, "phase_peak_bytes": phase_peaks,
            "step_peak_bytes": peak, "gradient_bytes": sum(p.numel() * 4 for p in model.trainable_parameters()),
            "load_average": os.getloadavg()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-0.5b")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--four_bit", action="store_true")
    args = parser.parse_args()
    result = measure_peak(args.model, args.layers, args.batch, args.four_bit)
    (HERE / "qwen_peak.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
