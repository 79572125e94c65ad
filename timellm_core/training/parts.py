"""What the trainer is built from: the accelerator, the seeded data order, and the data/backbone/model.

Kept apart from the loop so that ``evaluate`` and ``load_run_model`` build their pieces the same way.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterator

import torch
from torch.utils.data import Sampler

from timellm_core.config import BackboneConfig, RunConfig, TrainingConfig
from timellm_core.errors import ConfigError, TrainingError

BackboneSource = Any  # a loaded Backbone, a callable BackboneConfig -> Backbone, or None (load it here)


def make_accelerator(training: TrainingConfig) -> Any:
    """An ``accelerate.Accelerator`` for this run's device and mixed precision.

    A plain ``python`` process is one device (CUDA when present, else CPU). Under ``accelerate launch
    --multi_gpu`` the launcher's processes and devices are used as they are.
    """
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.state import AcceleratorState, PartialState

    device = str(training.device or "auto").lower()
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, not {training.device!r}.")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {training.device!r} was asked for but no CUDA GPU is available: use --device cpu.")
    precision = str(training.mixed_precision or "no").lower()
    if precision not in ("no", "bf16", "fp16"):
        raise ConfigError(f"mixed_precision must be no, bf16 or fp16, not {training.mixed_precision!r}.")
    use_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    if precision == "fp16" and use_cpu:
        raise ConfigError("fp16 mixed precision needs a CUDA GPU; use bf16 (or no) on a CPU.")

    # `accelerate launch` announces its processes through WORLD_SIZE before any state exists.
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1 or (
        PartialState._shared_state != {} and PartialState().num_processes > 1)
    if not distributed:
        # accelerate's state is a process-wide singleton that refuses a second, different setting;
        # one job runs at a time in a process, so each run may start from a clean state.
        AcceleratorState._reset_state(reset_partial_state=True)
        if device.startswith("cuda:"):
            torch.cuda.set_device(torch.device(device))
    # Some Time-LLM parameters (e.g. the unused head of an ablation) get no gradient in a step.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    return Accelerator(cpu=use_cpu, mixed_precision=precision, kwargs_handlers=[ddp])


class EpochShuffleSampler(Sampler[int]):
    """A random order that depends only on (seed, epoch): the same run, or a resumed one, sees the same batches."""

    def __init__(self, count: int, seed: int):
        self.count = int(count)
        self.seed = int(seed)
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed * 1_000_003 + self.epoch)
        yield from torch.randperm(self.count, generator=generator).tolist()

    def __len__(self) -> int:
        return self.count


def prepare_data_for(config: RunConfig) -> Any:
    """The data layer's ``ForecastData`` for this config."""
    from timellm_core.data import prepare_data

    return prepare_data(config.data, config.model.seq_len, config.model.pred_len)


def resolve_backbone(source: BackboneSource, config: BackboneConfig, device: torch.device | None = None,
                     random_weights: bool = False) -> Any:
    """A loaded backbone from a Backbone, a loader callable, or the catalogue.

    ``random_weights`` (llm_mode=random): from the catalogue, only the config and tokenizer are read and
    the weights drawn at random; a given backbone is turned into its random twin by the model itself.
    """
    if source is None and random_weights:
        from timellm_core.backbones.random_init import load_random_backbone

        return load_random_backbone(config, device=device)
    if source is None:
        from timellm_core.backbones import load_backbone

        return load_backbone(config, device=device)
    if callable(source) and not hasattr(source, "model"):
        return source(config)
    return source


def check_backbone_device(backbone: Any, device: torch.device) -> None:
    """The frozen backbone is not a submodule that accelerate moves: it must already be on the run's device."""
    where = getattr(backbone, "device", None)
    if where is not None and torch.device(where).type != torch.device(device).type:
        raise ConfigError(f"The backbone is on {where} but this run trains on {device}. Load the backbone on "
                          f"{device.type} (or set the run's device to {torch.device(where).type}).")


def build_model(config: RunConfig, backbone: Any, data: Any) -> torch.nn.Module:
    from timellm_core.model import TimeLLM

    return TimeLLM(config.model, backbone, description=getattr(data, "description", None))


def freeze_all_but_trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The trainable parameters; every other parameter is frozen so gradients reach nothing else."""
    trainable = list(model.trainable_parameters())
    if not trainable:
        raise TrainingError("The model has no trainable parameters: nothing to train.")
    keep = {id(parameter) for parameter in trainable}
    for parameter in model.parameters():
        if id(parameter) not in keep and parameter.requires_grad:
            parameter.requires_grad_(False)
    for parameter in trainable:
        parameter.requires_grad_(True)
    return trainable


def describe_backbone(backbone: Any) -> dict[str, Any] | None:
    """The backbone facts written to config.json (spec included, so the run can be rebuilt)."""
    if backbone is None:
        return None
    spec = getattr(backbone, "spec", None)
    facts = {key: getattr(backbone, key, None) for key in
             ("family", "hidden_size", "num_layers", "vocab_size", "causal", "load_in_4bit",
              "quantized_linear_layers", "memory_bytes", "random_init_seed")}
    facts["spec"] = dataclasses.asdict(spec) if dataclasses.is_dataclass(spec) else None
    return facts


def describe_data(data: Any, windows: dict[str, int], used: dict[str, int]) -> dict[str, Any]:
    """The dataset facts written to config.json."""
    spec = getattr(data, "spec", None)
    return {
        "name": getattr(spec, "name", None),
        "channels": list(getattr(data, "channels", []) or []),
        "target_channels": list(getattr(data, "target_channels", []) or []),
        "period": getattr(data, "period", None),
        "description": getattr(data, "description", None),
        "windows": windows,
        "windows_used": used,
        "spec": dataclasses.asdict(spec) if dataclasses.is_dataclass(spec) else None,
    }


def window_count_of(data: Any, split: str) -> int:
    """Windows in a split of any data object (M4 data counts its own; others list theirs)."""
    counter = getattr(data, "window_count", None)
    return int(counter(split)) if callable(counter) else len(data.windows(split))
