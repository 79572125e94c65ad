"""Which training settings fit a GPU of a given size: the memory planner asked for the nearest ones.

The Backbone page shows the answer as "a plan for a 6 GB GPU"; benchmarks/qwen.md the seed's table.
A plan fits when a training step's high-water mark (``MemoryPlan.peak_bytes``: what persists, plus
the largest of the step's moments, transient working sets included) and the CUDA context with the
allocator's slack (``CUDA_RESERVE_GIB``, assumed 0.5 GiB) add up to no more than the GPU's memory.

Only levers this project really has are offered, nearest first:

1. 4-bit NF4 for the frozen LLM (bitsandbytes on CUDA; the forecast changes slightly);
2. the exact path (``optimize``, the default; a run set to the reference's computation changes nothing
   in the numbers when switched, up to rounding);
3. a smaller batch at the same number of LLM layers (the model is unchanged; more steps an epoch);
4. fewer LLM layers at the same batch (a different model: Time-LLM keeps the first K layers);
5. only when none of those fits: fewer text prototypes, which shrinks the V x S mapping layer and its
   Adam state (16 bytes a weight: 2.3 GiB for Qwen 2.5's 151,936 words and 1000 prototypes). The
   trainer uses Adam for every trainable layer; there is no 8-bit or SGD option for that layer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from timellm_core.backbones.base import BackboneSpec
from timellm_core.backbones.catalogue import CATALOGUE
from timellm_core.backbones.memory import CUDA_RESERVE_GIB, GIB, MemoryPlan, plan_memory
from timellm_core.config import TimeLLMConfig

GPU_GIB = 6.0  # the seed's target: a 6 GB consumer GPU
PROTOTYPE_CHOICES = (500, 250, 100)  # tried last, largest first


def gpu_bytes_needed(plan: MemoryPlan) -> int:
    """A step's high-water mark + the CUDA context and the allocator's slack."""
    return plan.peak_bytes + int(CUDA_RESERVE_GIB * GIB)


@dataclass(frozen=True)
class TrainingSettings:
    """The settings a GPU plan may change; everything else stays as the person set it."""

    llm_layers: int
    batch_size: int
    load_in_4bit: bool
    optimize: bool
    num_prototypes: int


@dataclass(frozen=True)
class GpuOption:
    """One set of settings, its memory plan and what it changes, in words."""

    settings: TrainingSettings
    plan: MemoryPlan
    changes: tuple[str, ...]  # empty: the settings as asked

    @property
    def needed_bytes(self) -> int:
        return gpu_bytes_needed(self.plan)

    def fits(self, gigabytes: float) -> bool:
        return self.needed_bytes <= gigabytes * GIB


@dataclass(frozen=True)
class GpuAdvice:
    """The settings as asked, whether they fit, and the nearest settings that do (none when they fit)."""

    gigabytes: float
    asked: GpuOption
    options: tuple[GpuOption, ...]

    @property
    def asked_fits(self) -> bool:
        return self.asked.fits(self.gigabytes)


def _plan(spec: BackboneSpec, config: TimeLLMConfig, settings: TrainingSettings, n_channels: int,
          prompt_tokens: int | None) -> MemoryPlan:
    model_config = replace(config, num_prototypes=settings.num_prototypes, optimize=settings.optimize)
    # On CUDA a run loads the LLM in float32, or in NF4 with bf16 compute (``backbones.quantization``).
    return plan_memory(spec, settings.llm_layers, "4bit" if settings.load_in_4bit else "fp32", model_config,
                       settings.batch_size, n_channels, training=True, prompt_tokens=prompt_tokens,
                       optimize=settings.optimize, device="cuda")


def advise_gpu(spec: BackboneSpec, config: TimeLLMConfig, llm_layers: int, batch_size: int, load_in_4bit: bool,
               n_channels: int, gigabytes: float = GPU_GIB, prompt_tokens: int | None = None) -> GpuAdvice:
    """The settings as asked and, when they do not fit ``gigabytes``, the nearest ones that do (see the module doc)."""
    asked_settings = TrainingSettings(int(llm_layers), int(batch_size), bool(load_in_4bit), bool(config.optimize),
                                      int(config.num_prototypes))

    def option(settings: TrainingSettings, changes: tuple[str, ...]) -> GpuOption:
        return GpuOption(settings, _plan(spec, config, settings, n_channels, prompt_tokens), changes)

    asked = option(asked_settings, ())
    if asked.fits(gigabytes):
        return GpuAdvice(gigabytes, asked, ())

    base, base_changes = asked_settings, []
    if not base.load_in_4bit:
        base, base_changes = replace(base, load_in_4bit=True), ["load in 4-bit NF4"]
    if not base.optimize:
        base, base_changes = replace(base, optimize=True), [*base_changes, "the exact path (optimize)"]
    options: list[GpuOption] = []
    if base_changes:
        lighter = option(base, tuple(base_changes))
        if lighter.fits(gigabytes):
            return GpuAdvice(gigabytes, asked, (lighter,))

    for batch in range(base.batch_size - 1, 0, -1):  # same layers, the largest smaller batch that fits
        candidate = option(replace(base, batch_size=batch), (*base_changes, f"batch {batch}"))
        if candidate.fits(gigabytes):
            options.append(candidate)
            break
    for layers in range(base.llm_layers - 1, 0, -1):  # same batch, the most layers that fit
        name = f"{layers} LLM layers" if layers > 1 else "1 LLM layer"
        candidate = option(replace(base, llm_layers=layers), (*base_changes, name))
        if candidate.fits(gigabytes):
            options.append(candidate)
            break
    if not options:  # neither lever alone: both, then the mapping layer's size
        smallest = replace(base, batch_size=1, llm_layers=1)
        choices = [(smallest, ("batch 1", "1 LLM layer"))] + [
            (replace(smallest, num_prototypes=prototypes), ("batch 1", "1 LLM layer", f"{prototypes} prototypes"))
            for prototypes in PROTOTYPE_CHOICES if prototypes < base.num_prototypes]
        for settings, changes in choices:
            candidate = option(settings, (*base_changes, *changes))
            if candidate.fits(gigabytes):
                options.append(candidate)
                break
    return GpuAdvice(gigabytes, asked, tuple(options))


# The seed's claim: Qwen 2.5 3B in NF4 trains Time-LLM in about 5 GB at these settings.
SEED_SETTINGS = {"batch_size": 8, "n_channels": 7, "seq_len": 512, "d_model": 32, "d_ff": 32}


def qwen_seed_table(layer_choices: tuple[int, ...] = (36, 12, 6), batch_sizes: tuple[int, ...] = (8, 1)) -> list[MemoryPlan]:
    """Plans for Qwen 2.5 3B in 4-bit (bf16 compute, a GPU) at the seed's settings: training and inference."""
    spec = CATALOGUE["qwen2.5-3b"]
    config = TimeLLMConfig(seq_len=SEED_SETTINGS["seq_len"], d_model=SEED_SETTINGS["d_model"],
                           d_ff=SEED_SETTINGS["d_ff"])
    plans = []
    for layers in layer_choices:
        for batch_size in batch_sizes:
            for optimize in (False, True):
                plans.append(plan_memory(spec, layers, "4bit", config, batch_size, SEED_SETTINGS["n_channels"],
                                         optimize=optimize))
        plans.append(plan_memory(spec, layers, "4bit", config, batch_sizes[0], SEED_SETTINGS["n_channels"],
                                 training=False))
    return plans


def _mode_label(plan: MemoryPlan) -> str:
    if not plan.training:
        return "inference"
    return "training, exact path" if plan.optimize else "training, reference path"


def plans_markdown(plans: list[MemoryPlan], gigabytes: float = GPU_GIB) -> str:
    """A Markdown table of plans, in GiB; "fits" adds ``CUDA_RESERVE_GIB`` to the step's peak."""
    lines = ["| llm_layers | batch | mode | frozen weights | trainable (+grads, Adam) | LLM activations | "
             "Time-LLM activations | total kept | backward working set | step peak | "
             f"fits {gigabytes:.0f} GiB with {CUDA_RESERVE_GIB} for CUDA? |",
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for plan in plans:
        lines.append(
            f"| {plan.llm_layers} | {plan.batch_size} | {_mode_label(plan)} | "
            f"{plan.frozen_weight_bytes / GIB:.2f} | {plan.trainable_bytes / GIB:.2f} | "
            f"{plan.llm_activation_bytes / GIB:.2f} | {plan.timellm_activation_bytes / GIB:.2f} | "
            f"{plan.total_bytes / GIB:.2f} | {plan.backward_transient_bytes / GIB:.2f} | "
            f"**{plan.peak_bytes / GIB:.2f}** | {'yes' if gpu_bytes_needed(plan) <= gigabytes * GIB else 'no'} |")
    return "\n".join(lines)
