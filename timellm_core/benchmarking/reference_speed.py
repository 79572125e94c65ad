"""Time the reference implementation itself on the benchmark's backbone, batch and settings.

The reference's ``models/TimeLLM.py`` (from ``bench --reference DIR``) runs as shipped: its own
prompt loop, tokenizer call, prototypes, reprogramming and LLM call (eager attention returning
every attention map and hidden state). Only its backbone is supplied (``reference_checkout``): the
same random SmolLM2-shaped LLaMA as our paths (same seed, same weights) cut to ``llm_layers``, and
the same tokenizer. Its ``configs`` are run_main.py's defaults with the benchmark's settings and our
description text (``prompt_domain 1``), so that both prompts say the same words.

A train step is what run_main.py's loop does: ``zero_grad``, forward, MSE on the last ``pred_len``
steps, backward, ``torch.optim.Adam`` step over the parameters with ``requires_grad``; eval is a
forward under ``no_grad`` (its ``vali``). ``reference-bf16`` wraps forward and loss in
``torch.autocast("cpu", bfloat16)``, where its ``--use_amp`` puts ``torch.cuda.amp.autocast()``.

Shims for the 2024 code on today's libraries, each applied in this worker only:
- the LLaMA config is made with ``attn_implementation="eager"``: the reference's transformers 4.31
  had no other LLaMA attention, and transformers 5 refuses ``output_attentions`` on sdpa;
- the patch embedding's convolution gets its input back in its weights' dtype: the reference casts
  the patches to bfloat16 (``x_enc.to(torch.bfloat16)``), which a float32 convolution refuses outside
  autocast. The values keep their bfloat16 rounding, as in the reference.

Run as ``python -m timellm_core.benchmarking.reference_speed --worker path SETTINGS_JSON PATH:STEPS``
(``speed`` spawns it, one fresh process per measurement).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from timellm_core.benchmarking.reference_checkout import (
    REFERENCE_PATHS, check_reference_checkout, load_reference_model_module, reference_configs, supply_pretrained)
from timellm_core.benchmarking.speed import (
    BENCH_DESCRIPTION, SMOLLM2_SHAPE, BenchSettings, _peak_rss_bytes, bench_batch, random_smollm2_llama,
    smollm2_tokenizer)

SMOLLM2_LAYERS = 30  # the whole SmolLM2-135M; the reference cuts its config to llm_layers itself
BACKBONE_SEED = 0  # smollm2_shaped_backbone's default: our paths' weights
SHIMS = ("LLaMA config made with eager attention (transformers 4.31 had no other; transformers 5 refuses "
         "output_attentions on sdpa)",
         "patch embedding convolution given its bfloat16-cast input back in float32 (values keep their "
         "bfloat16 rounding)")


class ReferenceBackbone:
    """What the reference's ``from_pretrained`` calls get, and what they asked for."""

    def __init__(self) -> None:
        self.tokenizer, self.tokenizer_label = smollm2_tokenizer()

    def config(self, *args: Any, **kwargs: Any):
        from transformers import LlamaConfig

        return LlamaConfig(num_hidden_layers=SMOLLM2_LAYERS, attn_implementation="eager", **SMOLLM2_SHAPE)

    def model(self, *args: Any, config=None, **kwargs: Any):
        """Our random SmolLM2-shaped LLaMA at the layer count the reference set on ``config``."""
        if config is None:
            config = self.config()
        return random_smollm2_llama(config, BACKBONE_SEED)

    def tokenizer_for(self, *args: Any, **kwargs: Any):
        return self.tokenizer


def _match_input_to_weights(module: torch.nn.Module, inputs: tuple) -> tuple | None:
    """Forward pre-hook: a floating input in another dtype than the weights, outside autocast, is cast to it."""
    x = inputs[0]
    if torch.is_autocast_enabled(x.device.type) or x.dtype == module.weight.dtype or not x.is_floating_point():
        return None
    return (x.to(module.weight.dtype), *inputs[1:])


def build_reference_model(settings: BenchSettings, reference_dir: str | Path) -> tuple[torch.nn.Module, dict]:
    """The reference's Model on the benchmark's backbone, in float32 as run_main.py makes it (``.float()``)."""
    folder = check_reference_checkout(reference_dir)
    module = load_reference_model_module(folder)
    backbone = ReferenceBackbone()
    suppliers = supply_pretrained(module, backbone.config, backbone.model, backbone.tokenizer_for)
    configs = reference_configs(
        task_name="long_term_forecast", seq_len=settings.seq_len, label_len=48, pred_len=settings.pred_len,
        enc_in=settings.channels, dec_in=settings.channels, c_out=settings.channels, d_model=settings.d_model,
        d_ff=settings.d_ff, n_heads=8, patch_len=16, stride=8, llm_model="LLAMA",
        llm_dim=SMOLLM2_SHAPE["hidden_size"], llm_layers=settings.llm_layers, dropout=0.1,
        prompt_domain=1, content=BENCH_DESCRIPTION, batch_size=settings.batch_size)
    torch.manual_seed(settings.seed)
    model = module.Model(configs).float()
    for layer in model.modules():
        if isinstance(layer, torch.nn.Conv1d):
            layer.register_forward_pre_hook(_match_input_to_weights)
    facts = {"reference_dir": str(folder), "tokenizer": backbone.tokenizer_label,
             "supplied": sorted(name for name, supplier in suppliers.items() if supplier.calls),
             "shims": list(SHIMS), "configs": vars(configs) | {"content": "(the benchmark's description)"}}
    return model, facts


def reference_inputs(settings: BenchSettings, label_len: int = 48) -> dict[str, torch.Tensor]:
    """The benchmark's batch in run_main.py's form: x, its time marks, the decoder input, the target."""
    x, y = bench_batch(settings)  # (B, T, N), (B, pred_len, N)
    marks = 4  # timeF features of hourly data; Time-LLM never reads them
    history = x[:, -label_len:] if label_len else x[:, :0]
    return {"x_enc": x, "x_mark_enc": torch.zeros(x.shape[0], x.shape[1], marks),
            "x_dec": torch.cat([history, torch.zeros_like(y)], dim=1),
            "x_mark_dec": torch.zeros(x.shape[0], label_len + y.shape[1], marks), "target": y}


def _precision(path: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if path == "reference-bf16" else contextlib.nullcontext()


def reference_train_step(model, optimizer, batch: dict[str, torch.Tensor], pred_len: int, path: str) -> float:
    """One step of run_main.py's loop (features M: every channel); its wall time."""
    start = time.perf_counter()
    optimizer.zero_grad()
    with _precision(path):
        outputs = model(batch["x_enc"], batch["x_mark_enc"], batch["x_dec"], batch["x_mark_dec"])
        loss = torch.nn.functional.mse_loss(outputs[:, -pred_len:, 0:], batch["target"][:, -pred_len:, 0:])
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def reference_eval_step(model, batch: dict[str, torch.Tensor], path: str) -> float:
    start = time.perf_counter()
    with torch.no_grad(), _precision(path):
        model(batch["x_enc"], batch["x_mark_enc"], batch["x_dec"], batch["x_mark_dec"])
    return time.perf_counter() - start


def measure_reference_path(settings: BenchSettings, path: str, steps: int) -> dict[str, Any]:
    """``measure_path`` for the reference: train steps and eval forwards after warm-up, peak RSS."""
    if path not in REFERENCE_PATHS:
        raise ValueError(f"not a reference path: {path!r}")
    model, facts = build_reference_model(settings, settings.reference_dir)
    batch = reference_inputs(settings)
    lengths: list[int] = []
    model.llm_model.register_forward_pre_hook(
        lambda _module, _args, kwargs: lengths.append(int(kwargs["inputs_embeds"].shape[1])), with_kwargs=True)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)  # as run_main.py
    model.train()
    train = [reference_train_step(model, optimizer, batch, settings.pred_len, path)
             for _ in range(settings.warmup + steps)][settings.warmup:]
    model.eval()
    evaluation = [reference_eval_step(model, batch, path) for _ in range(settings.warmup + steps)][settings.warmup:]
    return {"train_step_all_s": train, "eval_step_all_s": evaluation, "peak_rss_bytes": _peak_rss_bytes(),
            "sequence_length": lengths[-1], "patch_count": int(model.patch_nums), **facts}


def _worker(task: str, settings_json: str, extra: str) -> None:
    settings = BenchSettings(**json.loads(settings_json))
    if settings.threads:
        torch.set_num_threads(settings.threads)
    if task != "path":
        raise SystemExit(f"unknown reference benchmark task {task!r}")
    path, steps = extra.split(":")
    print(json.dumps(measure_reference_path(settings, path, int(steps))))


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit("usage: python -m timellm_core bench --reference DIR")
