"""Real Qwen 2.5 on this machine: load, weights, one training step, peak memory; planner alongside.

    .venv/bin/python benchmarks/qwen.py [--models qwen2.5-0.5b qwen2.5-1.5b] [--layers 6] [--batch 8] [--keep]

Each (model, precision) runs in a fresh process: load seconds, weight bytes as stored, Linear4bit
layers, trainable parameters, the bytes autograd saves for the backward pass, seconds of a training
step (forward, MSE, backward, Adam; the last of ``--steps``) and peak RSS, at the
seed's settings (7 channels, T 512, pred 96, d_model 32, d_ff 32, 8 heads, 1000 prototypes,
reference prompt). The memory planner's figures for the same settings stand next to each.
Also: load seconds and peak RSS when keeping 2, 6 and all layers of the 0.5B (fp32), and the
planner's Qwen 2.5 3B plan for a 6 GB GPU. Writes benchmarks/qwen.md and qwen.json.

``--keep``: measure only ``--models`` and keep the other rows (and the load table) already in
qwen.json. The planner's columns are recomputed for every row, kept ones included, from the
row's model, precision, batch and prompt length, so a planner change needs no new measurement.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

GIB = 2**30


def measure(name: str, layers: int, four_bit: bool, batch: int, steps: int) -> dict:
    """One process: load, then ``steps`` training steps at the seed's settings (none: load only)."""
    import os
    import resource

    import torch
    import transformers  # noqa: F401  (imported before "RSS at start", as loading would)

    from timellm_core.backbones import load_backbone
    from timellm_core.backbones.quantization import count_quantized_linear
    from timellm_core.config import BackboneConfig

    torch.manual_seed(0)
    rss_at_start = _current_rss_bytes()  # Python, torch and transformers imported, nothing loaded
    start = time.perf_counter()
    backbone = load_backbone(BackboneConfig(name=name, llm_layers=layers, load_in_4bit=four_bit), device="cpu")
    result = {"model": name, "layers": layers, "precision": "nf4" if four_bit else "fp32", "batch": batch,
              "load_s": time.perf_counter() - start, "weight_bytes": backbone.memory_bytes,
              "linear4bit": count_quantized_linear(backbone.model),
              "load_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
              "rss_at_start_bytes": rss_at_start, "load_average_before": os.getloadavg()}
    if steps == 0:
        return result
    model, optimizer, x, target = seed_step_parts(backbone, batch)

    saved: dict[int, int] = {}
    frozen = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *backbone.model.parameters(),
                                                        *backbone.model.buffers()]}

    def pack(tensor):
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    # The prompt length the planner needs, from one traced forward without autograd.
    with torch.no_grad():
        _, trace = model(x[:1], trace=True)
    prompt_tokens = max(len(ids) for ids in trace.prompt_token_ids)
    times = []
    for index in range(steps):
        start = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack if index == 0 else (lambda t: t), lambda t: t):
            forecast = model(x)
        loss = torch.nn.functional.mse_loss(forecast, target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    trainable = sum(p.numel() for p in model.trainable_parameters())
    result.update({
        "trainable_params": trainable, "prompt_tokens": prompt_tokens, "step_s": times[-1], "steps": steps,
        "saved_for_backward_bytes": sum(size for pointer, size in saved.items() if pointer not in frozen),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "loss_finite": bool(torch.isfinite(loss)), "load_average_after": os.getloadavg(),
    })
    return result


def seed_step_parts(backbone, batch: int):
    """(model in train mode, Adam, inputs (batch, 512, 7), targets (batch, 96, 7)) at the seed's settings."""
    import torch

    from timellm_core.config import TimeLLMConfig
    from timellm_core.model import TimeLLM
    from timellm_core.training.optimizer import make_adam

    config = TimeLLMConfig(seq_len=512, pred_len=96, patch_len=16, stride=8, d_model=32, d_ff=32, n_heads=8,
                           num_prototypes=1000)
    model = TimeLLM(config, backbone, description="The Electricity Transformer Temperature dataset.").train()
    optimizer = make_adam(model.trainable_parameters(), lr=1e-3)
    return model, optimizer, torch.randn(batch, 512, 7).cumsum(dim=1), torch.randn(batch, 96, 7)


def _current_rss_bytes() -> int:
    """Resident memory of this process now (Linux)."""
    import os

    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def plan_for(row: dict) -> dict:
    """The planner's figures for a measured row: same model, layers, precision, batch and prompt, on the CPU."""
    from timellm_core.backbones import CATALOGUE
    from timellm_core.backbones.memory import plan_memory
    from timellm_core.config import TimeLLMConfig

    config = TimeLLMConfig(seq_len=512, pred_len=96, patch_len=16, stride=8, d_model=32, d_ff=32, n_heads=8,
                           num_prototypes=1000)
    plan = plan_memory(CATALOGUE[row["model"]], row["layers"], "4bit" if row["precision"] == "nf4" else "fp32",
                       config, batch_size=row["batch"], n_channels=7, prompt_tokens=row["prompt_tokens"],
                       optimize=config.optimize, device="cpu")
    persistent = plan.frozen_weight_bytes + plan.trainable_bytes - plan.trainable_params * 4  # no gradients
    return {"frozen_weight_bytes": plan.frozen_weight_bytes, "trainable_bytes": plan.trainable_bytes,
            "activation_bytes": plan.activation_bytes, "total_bytes": plan.total_bytes,
            "peak_bytes": plan.peak_bytes, "peak_above_persistent_bytes": plan.peak_bytes - persistent,
            "backward_transient_bytes": plan.backward_transient_bytes}


def in_fresh_process(*args: str) -> dict:
    completed = subprocess.run([sys.executable, __file__, "--measure", *args], capture_output=True, text=True)
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "failed",
                "args": list(args)}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    from timellm_core.benchmarking.speed import machine_facts

    return machine_facts()["cpu"]


def _g(value: float) -> str:
    return f"{value / GIB:.2f}"


def render(results: list[dict], loads: list[dict], qwen3b: str, steps: int, notes: list[str]) -> str:
    import os

    import torch

    lines = ["# Real Qwen 2.5 on a CPU: load, memory and one training step", "",
             f"Machine: {cpu_name()}, {os.cpu_count()} logical cores, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads; each row's load average (1 minute, before/after) in the table. "
             "Each row is a fresh process. Reproduce: `.venv/bin/python benchmarks/qwen.py` "
             "(`--models qwen2.5-1.5b --keep` re-measures one model and keeps the other rows).", "",
             *[f"**{note}**\n" for note in notes],
             "Seed's settings: batch 8 (or the batch in the row) x 7 channels, T 512, pred 96, patch 16 / stride 8 "
             "(64 patches), d_model 32, d_ff 32, 8 heads, 1000 prototypes, the reference prompt; Adam. Step = "
             f"forward, MSE, backward, Adam step (step {steps} of the process"
             f"{', so it includes first-use allocation' if steps == 1 else ''}). Saved for backward = distinct "
             "tensors autograd keeps in the first step. Planner = `timellm_core.backbones.memory.plan_memory` "
             "for the same settings and prompt length, on the CPU (recomputed for every row with the current "
             "planner).", "",
             "| model | layers | weights | batch | load (s) | weight bytes (GiB) | planner | Linear4bit "
             "| trainable params | saved for backward (GiB) | planner | step (s) | peak RSS (GiB) | RSS at start "
             "| planner peak | planner total | load avg |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: | --- |"]
    for row in results:
        if "error" in row:
            lines.append(f"| {' '.join(row['args'])} | | | | | | | | | | | | failed: {row['error']} | | | |")
            continue
        plan = plan_for(row)
        load = (f"{row['load_average_before'][0]:.1f} / {row['load_average_after'][0]:.1f}"
                if "load_average_after" in row else "")
        lines.append(
            f"| {row['model']} | {row['layers']} | {row['precision']} | {row['batch']} | {row['load_s']:.1f} "
            f"| {_g(row['weight_bytes'])} | {_g(plan['frozen_weight_bytes'])} | {row['linear4bit']} "
            f"| {row['trainable_params'] / 1e6:.1f} M | {_g(row['saved_for_backward_bytes'])} "
            f"| {_g(plan['activation_bytes'])} | {row['step_s']:.1f} | {_g(row['peak_rss_bytes'])} "
            f"| {_g(row['rss_at_start_bytes']) if 'rss_at_start_bytes' in row else ''} "
            f"| {_g(plan['peak_bytes'])} | {_g(plan['total_bytes'])} | {load} |")
    lines += ["", "Planner columns: the exact path's plan (the path that ran). Planner total: everything the "
              "step holds at some point, counted at once; planner peak: the step's high-water mark (gradients are "
              "made in the backward pass while activations are released; see the profiler section below). Peak "
              "RSS is the process's high-water mark: besides the planner's peak it holds the process itself (RSS "
              "at start: Python, torch and transformers imported, nothing loaded), the tokenizer, the allocator's "
              "free but unreturned memory and, in the first step, one-off buffers.", "",
              *peak_section(), "",
              "## Loading K of N layers (qwen2.5-0.5b, fp32, from its converted folder)", "",
              "The converted weights are memory-mapped from their safetensors file, so resident memory after "
              "the load stays low until the weights are used; weight bytes are what the layers hold.", "",
              "| layers kept | load (s) | weight bytes (GiB) | peak RSS after load (GiB) |",
              "| ---: | ---: | ---: | ---: |"]
    for row in loads:
        if "error" in row:
            lines.append(f"| {' '.join(row['args'])} | failed: {row['error']} | | |")
            continue
        lines.append(f"| {row['layers']} | {row['load_s']:.1f} | {_g(row['weight_bytes'])} "
                     f"| {_g(row['load_peak_rss_bytes'])} |")
    lines += ["", "## The planner's Qwen 2.5 3B plans for a 6 GB GPU", "", qwen3b, ""]
    return "\n".join(lines)


def peak_section() -> list[str]:
    """The profiler's step peak (benchmarks/qwen_peak.py) against the planner's, when it has been measured."""
    path = HERE / "qwen_peak.json"
    if not path.exists():
        return []
    row = json.loads(path.read_text())
    plan = plan_for(row)
    phases = row["phase_peak_bytes"]
    bytes_ = "{:,}".format
    return ["## A training step's peak, measured with torch's profiler", "",
            f"`benchmarks/qwen_peak.py`: {row['model']}, {row['layers']} layers, {row['precision']}, batch "
            f"{row['batch']} x 7 channels, the second step of the process (the first creates Adam's moments). "
            "Bytes of live tensors above what lived before the step (weights, trainable parameters, Adam's "
            f"moments); load average {row['load_average'][0]:.1f}.", "",
            "| moment | measured (bytes) | planner (bytes) |", "| --- | ---: | ---: |",
            f"| end of the forward pass | {bytes_(row['live_after_forward_bytes'])} "
            f"| {bytes_(plan['activation_bytes'])} (saved for backward) |",
            f"| highest in the forward pass | {bytes_(phases['forward'])} | |",
            f"| highest in the backward pass | {bytes_(phases['backward'])} "
            f"| {bytes_(plan['activation_bytes'] + plan['backward_transient_bytes'])} (saved + first layer's "
            f"backward working set, {bytes_(plan['backward_transient_bytes'])}) |",
            f"| highest in the optimiser step | {bytes_(phases['optimizer'])} | {bytes_(row['gradient_bytes'])} "
            "(the gradients) |",
            f"| **step peak** | **{bytes_(row['step_peak_bytes'])}** | **{bytes_(plan['peak_above_persistent_bytes'])}** |",
            "", "The peak comes early in the backward pass: every kept activation is still there and the last "
            "layer's recomputed MLP (gate, silu, up and their gradients) is being worked through. The mapping "
            "layer's gradient (most of the gradients) is made last, when the activations are gone. The "
            "planner's total counts activations and gradients at once and no working set, so it lies above "
            "the peak or below it depending on the model (0.5B: above; 1.5B, with its wider MLP: below)."]


def six_gb_section() -> str:
    """The seed table and the planner's plan for a 6 GB GPU (Markdown)."""
    from timellm_core.backbones import CATALOGUE
    from timellm_core.backbones.gpu_fit import SEED_SETTINGS, advise_gpu, plans_markdown, qwen_seed_table
    from timellm_core.backbones.memory import CUDA_RESERVE_GIB
    from timellm_core.config import TimeLLMConfig

    config = TimeLLMConfig(seq_len=SEED_SETTINGS["seq_len"], d_model=SEED_SETTINGS["d_model"],
                           d_ff=SEED_SETTINGS["d_ff"])
    lines = ["On a GPU (bf16 compute under NF4, CUDA's one-byte dropout masks), in GiB. Step peak = what "
             "persists between steps + the largest moment of a step (see the profiler section); 'fits' adds "
             f"{CUDA_RESERVE_GIB} GiB assumed for the CUDA context and the allocator's slack.", "",
             plans_markdown(qwen_seed_table()), "", "The Backbone page's plan for a 6 GB GPU "
             "(`timellm_core.backbones.gpu_fit.advise_gpu`), 4-bit, exact path:", ""]
    for layers in (6, 12, 36):
        advice = advise_gpu(CATALOGUE["qwen2.5-3b"], config, layers, SEED_SETTINGS["batch_size"], True,
                            SEED_SETTINGS["n_channels"])
        need = f"{advice.asked.needed_bytes / GIB:.2f} GiB with the CUDA context"
        if advice.asked_fits:
            lines.append(f"- {layers} layers, batch 8: fits ({need}).")
        else:
            nearest = "; ".join(f"{', '.join(option.changes)} ({option.needed_bytes / GIB:.2f} GiB)"
                                for option in advice.options)
            lines.append(f"- {layers} layers, batch 8: does not fit ({need}); nearest that fit: {nearest}.")
    lines += ["", "The largest single item is the 151,936 x 1000 mapping layer with its gradient and Adam's two "
              "moments (2.29 GiB). The trainer uses Adam for every trainable layer (no 8-bit optimiser state, no "
              "SGD for that layer), so the plan does not offer a lighter one. With 16-bit embeddings the "
              "prototypes' product keeps a float32 copy of the 151,936 x 2048 table (1.16 GiB, in the Time-LLM "
              "activations) until the mapping layer's backward pass. No GPU measurement has been made."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["qwen2.5-0.5b", "qwen2.5-1.5b"])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1, help="training steps per process; the last is reported")
    parser.add_argument("--keep", action="store_true",
                        help="keep qwen.json's rows of other models and its load table; measure only --models")
    parser.add_argument("--note", action="append", default=None,
                        help="a sentence printed in bold above the table (replaces the recorded notes)")
    parser.add_argument("--render", action="store_true", help="only rewrite qwen.md from qwen.json")
    parser.add_argument("--measure", nargs=5, metavar=("NAME", "LAYERS", "FOURBIT", "BATCH", "STEPS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        name, layers, four_bit, batch, steps = args.measure
        print(json.dumps(measure(name, int(layers), four_bit == "1", int(batch), int(steps))))
        return 0

    import os

    recorded = json.loads((HERE / "qwen.json").read_text()) if (HERE / "qwen.json").exists() else {}
    notes = args.note if args.note is not None else recorded.get("notes", [])
    if args.render:
        results, loads = recorded["results"], recorded["loads"]
    else:
        results = [row for row in recorded.get("results", []) if args.keep and row.get("model") not in args.models]
        for name in args.models:
            for four_bit in ("0", "1"):
                print(f"{name} {'nf4' if four_bit == '1' else 'fp32'} ...", flush=True)
                results.append(in_fresh_process(name, str(args.layers), four_bit, str(args.batch), str(args.steps)))
        loads = recorded.get("loads", []) if args.keep else []
        for layers in () if args.keep else (2, 6, 24):
            print(f"qwen2.5-0.5b load, {layers} layers ...", flush=True)
            loads.append(in_fresh_process("qwen2.5-0.5b", str(layers), "0", "1", "0"))
    for row in results:
        if "error" not in row:
            row["plan"] = plan_for(row)
    report = render(results, loads, six_gb_section(), args.steps, notes)
    (HERE / "qwen.json").write_text(json.dumps({"results": results, "loads": loads, "notes": notes},
                                               indent=2) + "\n")
    (HERE / "qwen.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
