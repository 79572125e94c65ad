"""Memory planner: how many bytes a Time-LLM run needs for a backbone, before anything is loaded.

What is counted (and what is not):

- **Frozen weights**: the kept layers, the input embeddings and the final norm, in the chosen
  precision. ``4bit``: every projection matrix inside the kept layers in NF4 with double
  quantisation (0.5 + 1/64 + 1/4096 bytes a weight, plus two small code books a layer), the rest in
  the compute dtype (bf16 on a GPU; pass ``compute_dtype_bytes=4`` for CPU). BERT's pooler and every
  LM head are not loaded, so not counted.
- **Trainable parameters** of Time-LLM (mapping layer V x S + S, patch embedding, reprogramming
  layer, output head) in float32; when training, also their gradients and Adam's two moments
  (16 bytes a parameter).
- **Activations** for one batch of B*N sequences of ``prompt_tokens + P`` positions. Training: the
  tensors autograd saves for the backward pass through the kept layers (gradients reach the inputs,
  so every layer keeps them although no LLM weight trains), per token and layer:
  LLaMA/Qwen2 ``6D + 3F``, GPT-2 ``8D + 4F``, BERT ``6D + F`` elements, plus ``H`` (attention
  log-sum-exp), ``L`` (the padding mask) and, with eager attention, ``H*L`` (probabilities); norm
  inputs are float32 even in bf16. Plus the reprogramming attention (softmax output, dropout mask
  and output: B*N*H*P*S) and the output head's input. On this project's exact path (``optimize``)
  the gated MLPs keep their input ``D`` instead of ``3F`` (recomputed, ``llm/gated_mlp.py``) and
  the reprogramming keeps only its one-byte dropout mask of that size plus Q, K and V
  (``model/prototype_attention.py``). These formulas were read off
  ``torch.autograd.graph.saved_tensors_hooks`` on the tiny backbones (test_backbones_memory.py
  checks them). Inference: one layer's working set (nothing is kept between layers).
- **Not counted**: the CUDA context and allocator slack (about 0.3-0.5 GB on a GPU), transient
  buffers of the backward pass (about one layer's activations), the optimiser's temporary copies
  (none with the fused Adam the trainer uses), data loading. Leave ~10% headroom above ``total_bytes``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from timellm_core.backbones.base import Backbone, BackboneSpec
from timellm_core.backbones.catalogue import CATALOGUE
from timellm_core.config import TimeLLMConfig
from timellm_core.errors import BackboneError

PRECISIONS = ("fp32", "bf16", "4bit")
NF4_BYTES_PER_WEIGHT = 0.5 + 1 / 64 + 4 / (64 * 256)  # packed nibbles + uint8 block scales + fp32 scales of scales
NF4_CODEBOOK_BYTES = 16 * 4 + 256 * 4  # per quantised matrix: the NF4 code and the nested 8-bit code
DEFAULT_PROMPT_TOKENS = 192  # the reference prompt for ETTh1 with SmolLM2's tokenizer (digits one token each)
GIB = 1024 ** 3
CUDA_RESERVE_GIB = 0.5  # CUDA context and allocator slack, not in the estimate


@dataclass
class MemoryPlan:
    """Estimated bytes of one Time-LLM configuration; see the module docstring for what is counted."""

    backbone: str
    precision: str
    llm_layers: int
    training: bool
    batch_size: int
    n_channels: int
    sequence_length: int  # prompt tokens + patches
    frozen_weight_bytes: int
    trainable_params: int
    trainable_bytes: int  # params (+ grads + Adam moments when training)
    llm_activation_bytes: int
    timellm_activation_bytes: int  # reprogramming attention, patches, output head
    trainable_breakdown: dict[str, int] = field(default_factory=dict)  # parameters per layer
    optimize: bool = False  # planned for the exact path (prompt in a no-grad cache) or the reference's
    prompt_cache_bytes: int = 0  # exact path: the prompt's key/value cache, alive during the step

    @property
    def activation_bytes(self) -> int:
        return self.llm_activation_bytes + self.timellm_activation_bytes + self.prompt_cache_bytes

    @property
    def total_bytes(self) -> int:
        return self.frozen_weight_bytes + self.trainable_bytes + self.activation_bytes

    def fits(self, gigabytes: float, reserve_gigabytes: float = 0.0) -> bool:
        """Does the estimate fit in ``gigabytes`` GiB, keeping ``reserve_gigabytes`` free (e.g. ~0.5 for CUDA)?"""
        return self.total_bytes + reserve_gigabytes * GIB <= gigabytes * GIB

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.update(activation_bytes=self.activation_bytes, total_bytes=self.total_bytes)
        return values


@dataclass(frozen=True)
class _Shape:
    family: str
    hidden: int
    layers: int
    vocab: int
    heads: int
    kv_heads: int
    ffn: int
    positions: int


def _shape(source: BackboneSpec | Backbone) -> _Shape:
    if isinstance(source, Backbone):
        config = source.model.config
        heads = int(config.num_attention_heads)
        ffn = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * source.hidden_size
        return _Shape(source.family, source.hidden_size, source.num_layers, source.vocab_size, heads,
                      int(getattr(config, "num_key_value_heads", None) or heads), int(ffn),
                      int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 0)))
    spec = source
    missing = [n for n in ("hidden_size", "num_layers", "vocab_size", "num_heads", "intermediate_size")
               if getattr(spec, n) is None]
    if missing:
        raise BackboneError(f"{spec.name}: size facts missing ({', '.join(missing)}); load it to plan its memory.")
    return _Shape(spec.family, spec.hidden_size, spec.num_layers, spec.vocab_size, spec.num_heads,
                  spec.num_kv_heads or spec.num_heads, spec.intermediate_size, spec.max_positions or 0)


def _layer_params(s: _Shape) -> tuple[int, int]:
    """(projection-matrix weights, other parameters) of one transformer layer."""
    d, f = s.hidden, s.ffn
    kv = s.kv_heads * (d // s.heads)
    if s.family in ("llama", "qwen2"):
        matrices = 2 * d * d + 2 * d * kv + 3 * d * f
        other = 2 * d + ((d + 2 * kv) if s.family == "qwen2" else 0)  # two RMSNorms; Qwen2 has q/k/v biases
    elif s.family == "gpt2":
        matrices = 4 * d * d + 2 * d * f
        other = 3 * d + d + f + d + 4 * d  # c_attn, c_proj, c_fc, mlp.c_proj biases; two LayerNorms
    elif s.family == "bert":
        matrices = 4 * d * d + 2 * d * f
        other = 4 * d + f + d + 4 * d  # q/k/v/o, intermediate, output biases; two LayerNorms
    else:
        raise BackboneError(f"No memory model for family {s.family!r}.")
    return matrices, other


def _outside_layer_params(s: _Shape) -> int:
    """Embeddings and final norm: everything outside the transformer layers (no LM head, no pooler)."""
    d = s.hidden
    if s.family in ("llama", "qwen2"):
        return s.vocab * d + d
    if s.family == "gpt2":
        return s.vocab * d + s.positions * d + 2 * d
    return s.vocab * d + s.positions * d + 2 * d + 2 * d  # BERT: word, position, token-type, LayerNorm


def model_params(source: BackboneSpec | Backbone, llm_layers: int | None = None) -> int:
    """Parameters of the base model with ``llm_layers`` layers (all when None), as loaded."""
    s = _shape(source)
    matrices, other = _layer_params(s)
    return _outside_layer_params(s) + (llm_layers or s.layers) * (matrices + other)


def _weight_bytes(s: _Shape, layers: int, precision: str, compute_bytes: int) -> int:
    matrices, other = _layer_params(s)
    outside = _outside_layer_params(s)
    if precision == "4bit":
        quantised = layers * (matrices * NF4_BYTES_PER_WEIGHT + _matrices_per_layer(s) * NF4_CODEBOOK_BYTES)
        return int(quantised + (outside + layers * other) * compute_bytes)
    return (outside + layers * (matrices + other)) * compute_bytes


def frozen_weight_bytes(source: BackboneSpec | Backbone, llm_layers: int | None, precision: str,
                        compute_dtype_bytes: int | None = None) -> int:
    """Bytes of the frozen base model with ``llm_layers`` layers (all when None) in ``precision``."""
    if precision not in PRECISIONS:
        raise BackboneError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    s = _shape(source)
    compute = compute_dtype_bytes or (4 if precision == "fp32" else 2)
    return _weight_bytes(s, llm_layers or s.layers, precision, compute)


def _matrices_per_layer(s: _Shape) -> int:
    return 7 if s.family in ("llama", "qwen2") else (4 if s.family == "gpt2" else 6)


def trainable_parameters(vocab_size: int, hidden_size: int, config: TimeLLMConfig) -> dict[str, int]:
    """Parameters of Time-LLM's trainable layers (docs/how-it-works.md §2, steps 6-10)."""
    heads_width = config.n_heads * config.d_ff
    return {
        "mapping": vocab_size * config.num_prototypes + config.num_prototypes,  # Linear(V -> S)
        "patch_embedding": config.patch_len * config.d_model * 3,  # Conv1d, kernel 3, no bias
        "reprogramming": (config.d_model * heads_width + heads_width) + 2 * (hidden_size * heads_width + heads_width)
                         + (heads_width * hidden_size + hidden_size),  # Q, K, V, out
        "output_head": config.d_ff * config.patch_count * config.pred_len + config.pred_len,
    }


def _llm_activation_elements(s: _Shape, tokens: int, length: int, attention: str,
                             lighter_mlp: bool = False) -> tuple[int, int]:
    """(compute-dtype elements, float32 elements) saved for backward per kept layer."""
    d, f, h = s.hidden, s.ffn, s.heads
    eager = h * length if attention == "eager" else 0
    if s.family in ("llama", "qwen2"):
        mlp = d if lighter_mlp else 3 * f  # gate, silu(gate), up; or only the MLP input, recomputed from
        return tokens * (4 * d + mlp + length + eager), tokens * (2 * d + h + 2)  # RMSNorm inputs upcast
    if s.family == "gpt2":
        return tokens * (8 * d + 4 * f + length + eager), tokens * (h + 4)
    return tokens * (6 * d + f + length + eager), tokens * (h + 4)


def plan_memory(source: BackboneSpec | Backbone, llm_layers: int, precision: str, model_config: TimeLLMConfig,
                batch_size: int, n_channels: int, training: bool = True, prompt_tokens: int | None = None,
                attention: str = "sdpa", compute_dtype_bytes: int | None = None,
                optimize: bool = False) -> MemoryPlan:
    """Estimate the bytes of a run; see the module docstring for what is and is not counted.

    ``precision``: fp32 | bf16 | 4bit. ``compute_dtype_bytes``: bytes of activations and of the
    non-quantised weights (default 4 for fp32, else 2; 4-bit on CPU computes in float32: pass 4).
    ``prompt_tokens``: default: the reference prompt tokenised by the backbone when one is given.
    ``optimize``: plan for this project's exact path (``TimeLLMConfig.optimize``) instead of the
    reference's: on a causal backbone the prompt runs without autograd into a key/value cache, so
    the backward pass keeps activations for the P patch positions only, plus the cached and the
    concatenated keys/values of every kept layer. BERT has no cache and is planned as the reference.
    """
    if precision not in PRECISIONS:
        raise BackboneError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    s = _shape(source)
    name = source.spec.name if isinstance(source, Backbone) else source.name
    if not 1 <= llm_layers <= s.layers:
        raise BackboneError(f"{name} has {s.layers} layers; llm_layers must be between 1 and {s.layers}.")
    compute = compute_dtype_bytes or (4 if precision == "fp32" else 2)
    if prompt_tokens is None:
        prompt_tokens = reference_prompt_tokens(source) if isinstance(source, Backbone) else DEFAULT_PROMPT_TOKENS
    patches = model_config.patch_count
    length = prompt_tokens + patches
    sequences = batch_size * n_channels  # channel independence: one LLM sequence per channel
    tokens = sequences * length

    breakdown = trainable_parameters(s.vocab, s.hidden, model_config)
    trainable = sum(breakdown.values())
    trainable_bytes = trainable * (16 if training else 4)

    prompt_cache = 0
    if training and optimize and s.family != "bert":
        grad_tokens = sequences * patches  # only the patch positions run with autograd
        low, high = _llm_activation_elements(s, grad_tokens, length, attention, lighter_mlp=True)
        kv_width = 2 * s.kv_heads * (s.hidden // s.heads)  # keys + values a position
        saved_keys_values = sequences * length * kv_width  # attention over prompt + patches keeps them all
        llm_activations = (llm_layers * ((low + saved_keys_values) * compute + high * 4)
                           + grad_tokens * s.hidden * 4)  # + final norm input
        prompt_cache = llm_layers * sequences * prompt_tokens * kv_width * compute
    elif training:
        low, high = _llm_activation_elements(s, tokens, length, attention)
        llm_activations = llm_layers * (low * compute + high * 4) + tokens * s.hidden * 4  # + final norm input
    if training:
        attention_map = sequences * model_config.n_heads * patches * model_config.num_prototypes
        heads_width = model_config.n_heads * model_config.d_ff
        if optimize:  # blockwise: the keep-mask (1 byte an entry) and the prototypes' keys and values
            reprogramming = attention_map * 1 + 2 * model_config.num_prototypes * heads_width * 4
        else:  # softmax output, dropout mask, dropout output
            reprogramming = attention_map * (4 + 1 + 4)
        timellm = (reprogramming
                   + sequences * patches * (model_config.d_model + heads_width
                                            + 2 * s.hidden) * 4  # patch embedding, queries, reprogrammed, LLM out
                   + sequences * model_config.d_ff * patches * 4)  # output head input
    else:
        low, high = _llm_activation_elements(s, tokens, length, attention)
        llm_activations = low * compute + high * 4 + 2 * tokens * s.hidden * compute  # one layer + residual stream
        attention_map = sequences * model_config.n_heads * patches * model_config.num_prototypes
        timellm = attention_map * 4 * 2 + sequences * patches * 2 * s.hidden * 4
    return MemoryPlan(
        backbone=name, precision=precision, llm_layers=llm_layers, training=training, batch_size=batch_size,
        n_channels=n_channels, sequence_length=length,
        frozen_weight_bytes=_weight_bytes(s, llm_layers, precision, compute),
        trainable_params=trainable, trainable_bytes=trainable_bytes,
        llm_activation_bytes=int(llm_activations), timellm_activation_bytes=int(timellm),
        trainable_breakdown=breakdown, optimize=bool(optimize and training and s.family != "bert"),
        prompt_cache_bytes=int(prompt_cache))


def reference_prompt_tokens(backbone: Backbone, pred_len: int = 96, seq_len: int = 512) -> int:
    """Tokens of a typical reference-style prompt (ETT description, float32 statistics) for this tokenizer."""
    description = ("The Electricity Transformer Temperature (ETT) dataset records the oil temperature of "
                   "electricity transformers and six power load features, every hour, over two years, from two "
                   "counties in China. Oil temperature reflects the condition of a transformer.")
    prompt = (f"<|start_prompt|>Dataset description: {description}Task description: forecast the next {pred_len} "
              f"steps given the previous {seq_len} steps information; Input statistics: min value "
              f"{-1.2345678806304932}, max value {2.345678806304932}, median value {-0.05678806304932123}, the "
              f"trend of input is downward, top 5 lags are : {[0, 24, 168, 48, 72]}<|<end_prompt>|>")
    return len(backbone.tokenizer(prompt)["input_ids"])


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


def plans_markdown(plans: list[MemoryPlan]) -> str:
    """A Markdown table of plans, in GiB; "fits" keeps ``CUDA_RESERVE_GIB`` free."""
    lines = ["| llm_layers | batch | mode | frozen weights | trainable (+Adam) | LLM activations | "
             "Time-LLM activations | total | fits a 6 GiB GPU? |",  # LLM activations include the exact path's prompt cache
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for plan in plans:
        lines.append(
            f"| {plan.llm_layers} | {plan.batch_size} | {_mode_label(plan)} | "
            f"{plan.frozen_weight_bytes / GIB:.2f} | {plan.trainable_bytes / GIB:.2f} | "
            f"{(plan.llm_activation_bytes + plan.prompt_cache_bytes) / GIB:.2f} | "
            f"{plan.timellm_activation_bytes / GIB:.2f} | "
            f"**{plan.total_bytes / GIB:.2f}** | {'yes' if plan.fits(6, CUDA_RESERVE_GIB) else 'no'} |")
    return "\n".join(lines)
