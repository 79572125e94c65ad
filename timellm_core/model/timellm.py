"""Time-LLM (Jin et al., ICLR 2024): forecast a time series by reprogramming a frozen LLM.

Read top to bottom, ``forward`` is docs/how-it-works.md §2: normalise, split channels, prompt, patch,
embed, reprogram onto text prototypes, run the frozen LLM over [prompt][patches], project the
patch positions to the forecast, de-normalise. Only the layers around the LLM are trained; the
backbone is held as a plain attribute, not a submodule, so ``state_dict()`` has only them.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from timellm_core.backbones.base import Backbone
from timellm_core.backbones.random_init import randomly_initialised
from timellm_core.config import TimeLLMConfig
from timellm_core.errors import ConfigError, RunError
from timellm_core.model.ablations import build_llm_replacement, normalize_output, runs_llm
from timellm_core.model.head import FlattenHead
from timellm_core.llm.precision import FastPrecision, choose_fast_precision
from timellm_core.llm.runner import LLMRunner
from timellm_core.model.normalization import InstanceNormalization
from timellm_core.model.patch_embedding import PatchEmbedding
from timellm_core.model.patching import Patching
from timellm_core.model.prompt import DEFAULT_DESCRIPTION, PromptBuilder, prompt_statistics
from timellm_core.model.prompt_tokens import PromptTokenizer
from timellm_core.model.prototypes import TextPrototypes
from timellm_core.model.reference_checkpoint import from_reference_state_dict, to_reference_state_dict
from timellm_core.model.reprogramming import ReprogrammingLayer
from timellm_core.model.trace import Trace, detached


class TimeLLM(nn.Module):
    """(B, T, N) scaled values -> (B, pred_len, N) forecast, optionally with a ``Trace``.

    ``config.optimize`` (default) runs the exact optimisations (same forecast up to rounding);
    ``optimize=False`` computes the way the reference does, for comparison. ``config.fast`` (opt-in)
    uses compact prompt numbers and a quicker dropout draw, skips the exact path's MLP
    recomputation and, where this machine multiplies bf16 faster than float32
    (``fast_precision``, chosen by ``timellm_core.llm.precision``), adds bf16 autocast around the
    prototypes, reprogramming and LLM (on bf16 copies of a float32 backbone's weights): faster, the
    numbers change slightly, about 0.2 GiB more memory.
    """

    def __init__(self, config: TimeLLMConfig, backbone: Backbone, description: str | None = None) -> None:
        super().__init__()
        config.validate()
        if config.d_ff > backbone.hidden_size:
            raise ConfigError(
                f"d_ff ({config.d_ff}) is larger than the backbone's hidden size ({backbone.hidden_size}): "
                f"the output head reads the first d_ff features of the LLM output. Choose d_ff <= "
                f"{backbone.hidden_size}.")
        self.config = config
        if config.llm_mode == "random":  # same architecture and tokenizer, weights drawn under a fixed seed
            backbone = randomly_initialised(backbone)  # itself when it was loaded random already
        self.backbone = backbone  # a dataclass, not a Module: never registered, never in state_dict()
        self.description = config.description or description or DEFAULT_DESCRIPTION
        self.prompt_style = "compact" if config.fast else config.prompt_style
        self.patch_count = config.patch_count
        d_llm = backbone.hidden_size

        self.normalization = InstanceNormalization()
        self.patching = Patching(config.patch_len, config.stride)
        self.patch_embedding = PatchEmbedding(config.patch_len, config.d_model, config.dropout)
        self.text_prototypes = TextPrototypes(backbone.vocab_size, config.num_prototypes)
        self.reprogramming = ReprogrammingLayer(config.d_model, config.n_heads, config.d_ff, d_llm,
                                                config.attention_dropout)
        self.llm_replacement = build_llm_replacement(config.llm_mode, d_llm, config.dropout)
        self.output_head = FlattenHead(config.d_ff, self.patch_count, config.pred_len, config.dropout)
        self.to(backbone.device)

        self.prompt_builder = PromptBuilder(self.description, config.seq_len, config.pred_len, self.prompt_style)
        self.runs_llm = runs_llm(config.llm_mode)  # the LLM runs (frozen or random); else a layer replaces it
        self.prompt_tokenizer = PromptTokenizer(backbone.tokenizer) if self.runs_llm else None
        # The fast path's precision: bf16 only where this machine multiplies it faster (else float32).
        self.fast_precision: FastPrecision | None = choose_fast_precision(backbone.device) if config.fast else None
        self.llm_runner = LLMRunner(backbone, fast=self.fast_precision)

    # -- forward ---------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, trace: bool = False,
                llm_attention: bool = False) -> torch.Tensor | tuple[torch.Tensor, Trace]:
        """x (B, T, N) -> forecast (B, pred_len, N); with ``trace``, also the ``Trace`` of this forward.

        ``llm_attention`` (with ``trace``) also returns the LLM's attention maps of the patch
        positions, which needs eager attention for that call.
        """
        config = self.config
        self._check_input(x)
        batch, seq_len, channels = x.shape
        x = x.to(device=self.backbone.device, dtype=torch.float32)

        x_normalized, instance_statistics = self.normalization.normalize(x)  # (B, T, N)
        series = x_normalized.permute(0, 2, 1).contiguous()  # (B, N, T): channel independence

        statistics = tokens = parts = prompt = None
        if self.runs_llm:
            statistics = prompt_statistics(series.reshape(batch * channels, seq_len), config.top_k_lags)
            # Optimised: one batched tokenizer call. Unoptimised: the reference's per-series loop.
            parts = self.prompt_builder.build(statistics, looped=not config.optimize)
            tokens = self.prompt_tokenizer.tokenize(parts, batched=config.optimize)
            with self._autocast():  # the prompt runs first (cached path): it needs nothing trainable
                prompt = self.llm_runner.encode_prompt(tokens.prefix_ids, tokens.series_ids, tokens.series_mask,
                                                       optimize=config.optimize)

        patches = self.patching(series)  # (B*N, P, patch_len)
        patch_embeddings = self.patch_embedding(patches)  # (B*N, P, d_model)

        with self._autocast():
            word_embeddings = self.llm_runner.word_embeddings()  # (V, D), frozen (low-precision copy when fast)
            if config.optimize:
                prototypes = self.text_prototypes(word_embeddings)  # (S, D), cached in eval
            else:
                prototypes = self.text_prototypes.compute(word_embeddings)  # every forward, as the reference
            # The map A is materialised for a trace and on the unoptimised path; else computed blockwise.
            reprogrammed, prototype_attention = self.reprogramming(
                patch_embeddings, prototypes, keep_attention=trace or not config.optimize,
                quick_mask=config.fast)  # (B*N, P, D)
            llm_attentions = None
            if self.runs_llm:
                output = self.llm_runner.run_patches(prompt, reprogrammed, output_attentions=trace and llm_attention)
                hidden, llm_attentions, llm_path = output.patch_hidden, output.attentions, output.path
            else:
                hidden = normalize_output(self.llm_replacement(reprogrammed))  # (B*N, P, D), as the LLM's final norm
                llm_path = config.llm_mode

        features = hidden[:, :, :config.d_ff].float()  # (B*N, P, d_ff)
        forecast = self.output_head(features, channels)  # (B, pred_len, N)
        forecast = self.normalization.denormalize(forecast, instance_statistics)
        if not trace:
            return forecast

        return forecast, Trace(
            normalized_input=detached(x_normalized),
            mean=detached(instance_statistics.mean),
            stdev=detached(instance_statistics.stdev),
            patches=detached(patches),
            patch_embeddings=detached(patch_embeddings),
            prompts=parts.full_prompts() if parts is not None else [],
            prompt_token_ids=tokens.per_series() if tokens is not None else [],
            statistics=statistics.to("cpu") if statistics is not None else None,
            prototypes=detached(prototypes).float(),
            reprogramming_attention=detached(prototype_attention).float(),
            llm_output=detached(features),
            forecast=detached(forecast),
            llm_attention=[detached(a).float() for a in llm_attentions] if llm_attentions is not None else None,
            llm_path=llm_path,
        )

    def _autocast(self):
        """Autocast to the fast path's precision when it is below float32; else nothing."""
        if self.fast_precision is None or not self.fast_precision.lowered:
            return nullcontext()
        return torch.autocast(device_type=self.backbone.device.type, dtype=self.fast_precision.dtype)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != self.config.seq_len:
            raise ConfigError(
                f"The model expects input windows shaped (batch, seq_len={self.config.seq_len}, channels); "
                f"got {tuple(x.shape)}. Use windows of seq_len steps or rebuild the model with this seq_len.")

    # -- what is trained ---------------------------------------------------------------------------

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters outside the frozen backbone (all of this module's)."""
        return [parameter for parameter in self.parameters() if parameter.requires_grad]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """A checkpoint of the trained layers only (detached copies on the CPU)."""
        return {name: tensor.detach().to("cpu").clone() for name, tensor in self.state_dict().items()}

    def load_trainable_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load ``trainable_state_dict()`` output; a mismatch is a ``RunError`` naming the keys."""
        expected = self.state_dict()
        problems = []
        missing = sorted(set(expected) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(expected))
        if missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        mismatched = [f"{name} {tuple(state_dict[name].shape)} vs {tuple(tensor.shape)} here"
                      for name, tensor in expected.items()
                      if name in state_dict and tuple(state_dict[name].shape) != tuple(tensor.shape)]
        if mismatched:
            problems.append(f"shape mismatches: {'; '.join(mismatched)}")
        if problems:
            raise RunError(
                "This checkpoint does not match the model (was it saved with another configuration or "
                "backbone?): " + "; ".join(problems) + ". Rebuild the model with the run's own config.json.")
        self.load_state_dict({name: tensor.to(expected[name].dtype) for name, tensor in state_dict.items()})
        self.text_prototypes.clear_cache()

    def load_reference_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load the trained layers of a checkpoint saved by the reference implementation."""
        self.load_trainable_state_dict(from_reference_state_dict(state_dict, self.config.llm_mode))

    def to_reference_state_dict(self) -> dict[str, torch.Tensor]:
        """The trained layers under the reference implementation's parameter names."""
        return to_reference_state_dict(self.trainable_state_dict())

    def prototypes(self) -> torch.Tensor:
        """The current text prototypes (S, D), without autograd."""
        with torch.no_grad(), self._autocast():
            return self.text_prototypes(self.llm_runner.word_embeddings()).float()
