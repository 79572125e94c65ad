"""Speed and memory of the unoptimised, exact and fast paths (train and inspect faster, same math).

The backbone is a randomly initialised LLaMA shaped like SmolLM2-135M cut to 6 layers (no download);
its tokenizer is the real SmolLM2 one when ``base_models/SmolLM2-135M`` is present, else the tiny
one (the output says which: prompt lengths, hence timings, depend on it). Each path runs in a fresh
subprocess so that its peak resident memory is its own, and the paths take turns over several
rounds so that load from other programs spreads over all of them.

Run ``python -m timellm_core bench`` (or ``benchmarks/bench_speed.py``); this module is also the
worker those spawn: ``python -m timellm_core.benchmarking.speed --worker PATH SETTINGS_JSON``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from timellm_core.benchmarking.reference_checkout import REFERENCE_PATHS, REFERENCE_WORKER, check_reference_checkout
from timellm_core.benchmarking.report import PATHS, measured_paths, speed_ratios, targets, to_markdown  # noqa: F401
from timellm_core.machine import cpu_has_bf16_instructions, cpu_model_name

ZERO_GRADIENT = "reprogramming.key_projection.bias"  # zero in exact arithmetic: see measure_exactness
SMOLLM2_SHAPE = dict(hidden_size=576, num_attention_heads=9, num_key_value_heads=3, intermediate_size=1536,
                     vocab_size=49152, rms_norm_eps=1e-5, max_position_embeddings=8192, tie_word_embeddings=True,
                     bos_token_id=1, eos_token_id=2, pad_token_id=2)
# A dataset description of the usual length (the benchmark must not depend on the data layer).
BENCH_DESCRIPTION = (
    "The Electricity Transformer Temperature dataset records, every hour for two years, the oil temperature "
    "of power transformers at two substations in China together with six measurements of the electrical "
    "load they carry (high, middle and low useful and useless load). Oil temperature tells how hot a "
    "transformer runs, so forecasting it helps operators plan the load they can safely put on the grid. ")


@dataclass
class BenchSettings:
    """The seed's configuration (batch 8 x 7 channels, T 512, pred 96, d_model 32, d_ff 32)."""

    batch_size: int = 8
    channels: int = 7
    seq_len: int = 512
    pred_len: int = 96
    d_model: int = 32
    d_ff: int = 32
    llm_layers: int = 6
    steps: int = 5  # measured train steps (and eval forwards) per path at least; the median is reported
    warmup: int = 1  # unmeasured steps at the start of each process
    rounds: int = 3  # fresh processes per path, taking turns with the other paths
    seed: int = 2021
    threads: int | None = None  # torch threads in each worker; None keeps torch's default
    reference_dir: str | None = None  # a checkout of the reference implementation, timed as one more path
    reference_bf16: bool = False  # also time the reference under bf16 autocast (its --use_amp)


def smollm2_tokenizer() -> tuple[Any, str]:
    """The real SmolLM2 tokenizer if its folder is present, else the tiny test tokenizer."""
    from timellm_core.backbones import base_models_dir, tiny_tokenizer

    folder = base_models_dir() / "SmolLM2-135M"
    if (folder / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True), f"SmolLM2-135M ({folder.name})"
    return tiny_tokenizer("tiny-llama"), "tiny-llama (base_models/SmolLM2-135M not found)"


def random_smollm2_llama(config, seed: int = 0):
    """A LlamaModel of ``config`` (SmolLM2's shape) with the benchmark's random weights: the same for a
    given seed and layer count whatever else the config says (attention kind, outputs), frozen, eval."""
    from transformers import LlamaModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaModel(config).float().eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def smollm2_shaped_backbone(llm_layers: int = 6, seed: int = 0):
    """A random LLaMA with SmolLM2-135M's shape, frozen, in eval mode, on the CPU."""
    from transformers import LlamaConfig

    from timellm_core.backbones import Backbone, BackboneSpec

    tokenizer, tokenizer_label = smollm2_tokenizer()
    config = LlamaConfig(num_hidden_layers=llm_layers, attn_implementation="sdpa", **SMOLLM2_SHAPE)
    model = random_smollm2_llama(config, seed)
    spec = BackboneSpec(name="smollm2-135m-shaped (random)", family="llama", tiny=True, pretrained=False)
    backbone = Backbone(spec=spec, model=model, tokenizer=tokenizer, family="llama",
                        hidden_size=config.hidden_size, num_layers=llm_layers, vocab_size=config.vocab_size,
                        causal=True)
    return backbone, tokenizer_label


def model_config(settings: BenchSettings, path: str):
    from timellm_core.config import TimeLLMConfig

    return TimeLLMConfig(seq_len=settings.seq_len, pred_len=settings.pred_len, d_model=settings.d_model,
                         d_ff=settings.d_ff, optimize=path != "unoptimized", fast=path == "fast",
                         description=BENCH_DESCRIPTION)


def bench_batch(settings: BenchSettings, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random-walk windows (scaled) and targets, seeded."""
    generator = torch.Generator().manual_seed(settings.seed)
    batch = batch_size or settings.batch_size
    steps = torch.randn(batch, settings.seq_len + settings.pred_len, settings.channels, generator=generator)
    series = steps.cumsum(dim=1) / 10.0
    return series[:, :settings.seq_len].contiguous(), series[:, settings.seq_len:].contiguous()


def _build(settings: BenchSettings, path: str):
    from timellm_core.model.timellm import TimeLLM

    backbone, tokenizer_label = smollm2_shaped_backbone(settings.llm_layers)
    torch.manual_seed(settings.seed)
    return TimeLLM(model_config(settings, path), backbone), tokenizer_label


def _train_step(model, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """One training step (as the trainer does it: Adam, MSE); its wall time."""
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.mse_loss(model(x), y).backward()
    optimizer.step()
    return time.perf_counter() - start


def _eval_step(model, x: torch.Tensor) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        model(x)
    return time.perf_counter() - start


def measure_path(settings: BenchSettings, path: str, steps: int) -> dict[str, Any]:
    """One path alone in this (fresh) process: ``steps`` train steps and eval forwards after warm-up,
    their wall times, and the process's peak resident memory."""
    from timellm_core.training.optimizer import make_adam

    model, tokenizer_label = _build(settings, path)
    x, y = bench_batch(settings)
    optimizer = make_adam(model.trainable_parameters(), lr=1e-3)  # the trainer's optimiser, on every path
    model.train()
    train = [_train_step(model, optimizer, x, y) for _ in range(settings.warmup + steps)][settings.warmup:]
    model.eval()
    evaluation = [_eval_step(model, x) for _ in range(settings.warmup + steps)][settings.warmup:]
    tokens = _prompt_tokens(model, x)
    return {
        "train_step_all_s": train,
        "eval_step_all_s": evaluation,
        "peak_rss_bytes": _peak_rss_bytes(),
        "prompt_prefix_tokens": int(tokens.prefix_ids.shape[0]),
        "prompt_series_tokens_mean": float(tokens.series_mask.sum(dim=1).float().mean()),
        "patch_count": model.patch_count,
        "tokenizer": tokenizer_label,
    }


def measure_paths_in_rounds(settings: BenchSettings, say) -> dict[str, dict[str, Any]]:
    """Each path in fresh processes, taking turns over ``settings.rounds`` rounds.

    A fresh process per measurement keeps each path's memory its own; taking turns spreads any
    change of machine load over all paths instead of letting it fall on one.
    """
    per_round = -(-settings.steps // settings.rounds)  # ceil: at least settings.steps samples in all
    paths = measured_paths(dataclasses.asdict(settings))  # ours, and the reference's when a checkout is given
    runs: dict[str, list[dict[str, Any]]] = {path: [] for path in paths}
    for round_index in range(settings.rounds):
        for path in paths:
            say(f"round {round_index + 1}/{settings.rounds}: {path} path ...")
            worker = REFERENCE_WORKER if path in REFERENCE_PATHS else __name__
            runs[path].append(_in_subprocess("path", settings, f"{path}:{per_round}", worker))
    results = {}
    for path, path_runs in runs.items():
        train = [t for run in path_runs for t in run["train_step_all_s"]]
        evaluation = [t for run in path_runs for t in run["eval_step_all_s"]]
        results[path] = {**path_runs[0], "train_step_s": statistics.median(train),
                         "eval_step_s": statistics.median(evaluation), "train_step_all_s": train,
                         "eval_step_all_s": evaluation,
                         "peak_rss_bytes": max(run["peak_rss_bytes"] for run in path_runs)}
    return results


def _prompt_tokens(model, x: torch.Tensor):
    """The prompt token ids the model writes for x (to report prompt lengths)."""
    from timellm_core.model.prompt import prompt_statistics

    normalized, _ = model.normalization.normalize(x)
    series = normalized.permute(0, 2, 1).reshape(-1, x.shape[1])
    parts = model.prompt_builder.build(prompt_statistics(series, model.config.top_k_lags))
    return model.prompt_tokenizer.tokenize(parts)


def measure_exactness(settings: BenchSettings) -> dict[str, Any]:
    """Max relative difference of the exact path's forecast and gradients from the unoptimised path's.

    Same weights, same input, eval mode (no dropout), autograd on. For each tensor (the forecast and
    every parameter's gradient) the difference is max|a - b| / max|b|, and the largest is reported.
    The key projection's bias is left out of that maximum: its gradient is zero in exact arithmetic
    (softmax ignores a shift shared by all prototypes), so both paths give rounding noise whose
    ratio means nothing; its largest absolute value, relative to the largest gradient, is reported.
    """
    from timellm_core.model.timellm import TimeLLM

    backbone, _ = smollm2_shaped_backbone(settings.llm_layers)
    torch.manual_seed(settings.seed)
    exact = TimeLLM(model_config(settings, "exact"), backbone).eval()
    reference = TimeLLM(model_config(settings, "unoptimized"), backbone).eval()
    reference.load_trainable_state_dict(exact.trainable_state_dict())
    x, y = bench_batch(settings)
    forecasts, gradients = {}, {}
    for name, model in (("exact", exact), ("unoptimized", reference)):
        model.zero_grad(set_to_none=True)
        forecast = model(x)
        torch.nn.functional.mse_loss(forecast, y).backward()
        forecasts[name] = forecast.detach()
        gradients[name] = {key: p.grad.detach().clone() for key, p in model.named_parameters()}
    zero = gradients["unoptimized"].pop(ZERO_GRADIENT)
    zero_exact = gradients["exact"].pop(ZERO_GRADIENT)
    largest = max(g.abs().max().item() for g in gradients["unoptimized"].values())
    forecast_diff = max_relative_difference([forecasts["exact"]], [forecasts["unoptimized"]])
    names = sorted(gradients["exact"])
    gradient_diff = max_relative_difference([gradients["exact"][n] for n in names],
                                            [gradients["unoptimized"][n] for n in names])
    return {"exact_max_rel_diff": max(forecast_diff, gradient_diff),
            "exact_forecast_max_rel_diff": forecast_diff, "exact_gradient_max_rel_diff": gradient_diff,
            "key_bias_gradient_noise": max(zero.abs().max().item(), zero_exact.abs().max().item()) / largest}


def max_relative_difference(candidates: list[torch.Tensor], references: list[torch.Tensor]) -> float:
    """max over tensors of max|a - b| / max|b|."""
    return max((candidate - reference).abs().max().item() / max(reference.abs().max().item(), 1e-30)
               for candidate, reference in zip(candidates, references))


def measure_trace_forward(settings: BenchSettings, backbone_name: str | None = None,
                          repeats: int = 3) -> dict[str, Any]:
    """One ETTh1-shaped window (1 x T x 7) forward with trace: the first call and the median of the next."""
    from timellm_core.model.timellm import TimeLLM

    if backbone_name is None:
        backbone, label = smollm2_shaped_backbone(settings.llm_layers)
        label = f"random SmolLM2-shaped, tokenizer {label}"
    else:
        from timellm_core.backbones import load_backbone
        from timellm_core.config import BackboneConfig

        backbone = load_backbone(BackboneConfig(name=backbone_name, llm_layers=settings.llm_layers), device="cpu")
        label = f"{backbone_name} (pretrained, {settings.llm_layers} layers)"
    torch.manual_seed(settings.seed)
    model = TimeLLM(model_config(settings, "exact"), backbone).eval()
    x, _ = bench_batch(settings, batch_size=1)
    return {"backbone": label, "shape": list(x.shape), **time_traced_forward(model, x, repeats)}


def time_traced_forward(model, x: torch.Tensor, repeats: int = 3) -> dict[str, float]:
    """``model(x, trace=True)`` without autograd: the first call's seconds and the median of ``repeats`` more."""
    times = []
    with torch.no_grad():
        for _ in range(1 + repeats):
            start = time.perf_counter()
            model(x, trace=True)
            times.append(time.perf_counter() - start)
    return {"first_s": times[0], "median_s": statistics.median(times[1:])}


def matmul_rate_gflops(rows: int, repeats: int = 5) -> float:
    """This CPU's float32 matrix-product rate on the LLM's own shape: (rows, D) @ (D, F), median of repeats."""
    d, f = SMOLLM2_SHAPE["hidden_size"], SMOLLM2_SHAPE["intermediate_size"]
    a, b = torch.randn(rows, d), torch.randn(d, f)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * rows * d * f / statistics.median(times) / 1e9


def exact_eval_floor(settings: BenchSettings, series_tokens: float, patch_count: int) -> dict[str, Any]:
    """The least time the exact path's eval forward can take here: its LLM matrix products alone at this
    CPU's measured float32 rate (attention, norms and everything else left out: a lower bound).

    Per series: the statistics tokens through every layer but the last, where only their query/key/
    value projections run, and the patches through every layer.
    """
    d, f = SMOLLM2_SHAPE["hidden_size"], SMOLLM2_SHAPE["intermediate_size"]
    kv = SMOLLM2_SHAPE["num_key_value_heads"] * d // SMOLLM2_SHAPE["num_attention_heads"]
    layer = 2 * (2 * d * d + 2 * d * kv + 3 * d * f)  # FLOPs a token in one layer
    qkv = 2 * (d * d + 2 * d * kv)
    layers = settings.llm_layers
    series = settings.batch_size * settings.channels
    flops = series * (series_tokens * ((layers - 1) * layer + qkv) + patch_count * layers * layer)
    rate = matmul_rate_gflops(int(series * (series_tokens + patch_count)))
    return {"gflop": flops / 1e9, "matmul_gflops": rate, "floor_s": flops / 1e9 / rate}


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB


# -- orchestration: one subprocess per measurement -------------------------------------------------

def _in_subprocess(task: str, settings: BenchSettings, extra: str = "",
                   worker: str = "timellm_core.benchmarking.speed") -> dict[str, Any]:
    command = [sys.executable, "-m", worker, "--worker", task, json.dumps(dataclasses.asdict(settings)), extra]
    environment = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {task} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine_facts(threads: int | None = None) -> dict[str, Any]:
    return {"cpu": cpu_model_name(), "bf16_instructions": cpu_has_bf16_instructions(), "logical_cores": os.cpu_count(), "torch_threads": threads or torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "load_average_1m_before": os.getloadavg()[0]}


def run_benchmark(settings: BenchSettings, include_real: bool = True, progress=None) -> dict[str, Any]:
    """Every path's speed and memory, exactness, and the one-window trace forward of the pages."""
    say = progress or (lambda message: None)
    if settings.reference_dir:  # a wrong folder is a clear message before anything runs
        settings = dataclasses.replace(settings, reference_dir=str(check_reference_checkout(settings.reference_dir)))
    results: dict[str, Any] = {"settings": dataclasses.asdict(settings), "machine": machine_facts(settings.threads)}
    results.update(measure_paths_in_rounds(settings, say))
    say("comparing exact and unoptimised forecasts and gradients ...")
    results.update(_in_subprocess("exactness", settings))
    say("timing one traced window ...")
    results["trace_forward_one_window"] = [_in_subprocess("trace", settings)]
    from timellm_core.backbones import base_models_dir

    if include_real and (base_models_dir() / "SmolLM2-135M" / "config.json").is_file():
        say("timing one traced window with the real SmolLM2-135M ...")
        results["trace_forward_one_window"].append(_in_subprocess("trace", settings, "smollm2-135m"))
    unoptimized = results["unoptimized"]
    say("measuring the matrix-product rate (the exact eval's lower bound) ...")
    results["exact_eval_floor"] = _in_subprocess(
        "floor", settings, f"{results['exact']['prompt_series_tokens_mean']}:{results['exact']['patch_count']}")
    floor = results["exact_eval_floor"]
    floor["max_eval_speedup"] = unoptimized["eval_step_s"] / floor["floor_s"]
    results["tokenizer"] = unoptimized["tokenizer"]
    results.update(speed_ratios(results))  # against the reference code when it was timed, else our unoptimised path
    results["machine"]["load_average_1m_after"] = os.getloadavg()[0]
    results["targets"] = targets(results)
    return results


def _worker(task: str, settings_json: str, extra: str) -> None:
    settings = BenchSettings(**json.loads(settings_json))
    if settings.threads:
        torch.set_num_threads(settings.threads)
    if task == "path":
        path, steps = extra.split(":")
        result = measure_path(settings, path, int(steps))
    elif task == "exactness":
        result = measure_exactness(settings)
    elif task == "floor":
        series_tokens, patch_count = extra.split(":")
        result = exact_eval_floor(settings, float(series_tokens), int(patch_count))
    elif task == "trace":
        result = measure_trace_forward(settings, extra or None)
    else:
        raise SystemExit(f"unknown benchmark task {task!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "")
    else:
        raise SystemExit("usage: python -m timellm_core bench")
