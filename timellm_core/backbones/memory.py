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
  so every layer keeps them although no LLM weight trains); the per-layer elements by family and
  attention implementation are tabulated above ``_llm_activation_elements``. On this project's
  exact path (``optimize``) only the P patch positions run with autograd: per layer they keep
  their own activations (the gated MLPs only their input, recomputed in the backward pass,
  ``llm/gated_mlp.py``) plus the keys and values of the whole sequence at the key/value heads'
  width; the reprogramming keeps a one-byte dropout mask of its map and Q, K, V
  (``model/prototype_attention.py``). With 16-bit embeddings (bf16, or 4-bit on a GPU) the
  prototypes' product keeps a float32 copy of the (V, D) embedding table: 1.16 GiB for Qwen 2.5.
  These formulas were read off ``torch.autograd.graph.saved_tensors_hooks``, tensor by tensor, on
  the tiny backbones and on real Qwen 2.5 0.5B and 1.5B (test_backbones_memory.py checks them on
  the tiny ones; benchmarks/qwen.md records the real ones). Inference: one layer's working set.
- **Not counted**: the CUDA context and allocator slack (about 0.3-0.5 GB on a GPU), transient
  buffers of the backward pass (about one layer's activations), the optimiser's temporary copies
  (none with the fused Adam the trainer uses), data loading, the fast path (``--fast``) and the
  process itself (Python, torch and transformers imported: 0.27 GiB of resident memory here, measured
  in benchmarks/qwen.py; the tokenizer comes on top).
  Leave ~10% headroom above ``total_bytes``.
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
    # Exact path: the prompt's key/value cache, built before the patches run; the forward replaces it
    # layer by layer with the whole sequence's keys/values (in llm_activation_bytes), so not in the total.
    prompt_cache_bytes: int = 0
    # Working sets that come and go within a training step (see ``peak_bytes``):
    backward_transient_bytes: int = 0  # the largest one of a layer's backward pass, beyond what is kept
    prompt_pass_bytes: int = 0  # exact path: the no-grad prompt pass (one layer's working set + the cache)
    late_saved_bytes: int = 0  # kept until the mapping layer's backward, the last (the 16-bit embeddings' copy)

    @property
    def activation_bytes(self) -> int:
        return self.llm_activation_bytes + self.timellm_activation_bytes

    @property
    def total_bytes(self) -> int:
        """Everything counted at once: frozen weights, trainable parameters (+ gradients, Adam), activations."""
        return self.frozen_weight_bytes + self.trainable_bytes + self.activation_bytes

    @property
    def peak_bytes(self) -> int:
        """The high-water mark of a training step (inference: ``total_bytes``).

        What persists between steps (frozen weights, trainable parameters, Adam's moments) plus the
        largest of three moments: the no-grad prompt pass; the start of the backward pass (every kept
        activation and the first layer's backward working set); its end (every gradient, the mapping
        layer's being made last, and what is kept for it). The gradients are not yet there when the
        activations are, which is why the peak is below ``total_bytes`` when the mapping layer is large.
        Measured with torch's profiler on real Qwen 2.5 0.5B (6 layers, batch 8, exact path):
        952,852,876 bytes above what persists; planned: 952,539,136.
        """
        if not self.training:
            return self.total_bytes
        gradients = self.trainable_params * 4
        persistent = self.frozen_weight_bytes + self.trainable_bytes - gradients
        return persistent + max(self.prompt_pass_bytes, self.activation_bytes + self.backward_transient_bytes,
                                gradients + self.late_saved_bytes)

    def fits(self, gigabytes: float, reserve_gigabytes: float = 0.0) -> bool:
        """Does the step's peak fit in ``gigabytes`` GiB, keeping ``reserve_gigabytes`` free (e.g. ~0.5 for CUDA)?"""
        return self.peak_bytes + reserve_gigabytes * GIB <= gigabytes * GIB

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.update(activation_bytes=self.activation_bytes, total_bytes=self.total_bytes,
                      peak_bytes=self.peak_bytes)
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


# Per family, what autograd keeps in one kept layer for each position with gradients (elements;
# read off ``torch.autograd.graph.saved_tensors_hooks``, see test_backbones_memory.py). A frozen
# Linear keeps nothing but its weight (its input is needed only for the weight's gradient), so
# the projections themselves add nothing. Attention, by implementation:
#   sdpa   transformers' sdpa: q, k, v and the output (GQA heads copied to D wide), the mask (L
#          positions, a copy per layer) and the log-sum-exp (H, float32); GPT-2 keeps its fused
#          c_attn output (3D) and three D-wide copies instead of q, k, v.
#   eager  q, the (repeated) keys and values (3D) and the probabilities (H*L); no mask is kept.
#          LLaMA/Qwen2 take the softmax in float32 and keep that copy too in 16-bit.
#   cached this project's exact path (``llm/runner.py``): q and the output (GPT-2: c_attn's 3D
#          and the output), the mask and the log-sum-exp; the keys and values over all L
#          positions are counted apart, at the key/value heads' width.
# Norms: RMSNorm keeps its float32 input and 1/rms; LayerNorm its input (compute dtype) and two
# float32 statistics. MLP: LLaMA/Qwen2 keep gate, silu(gate) and up (3F), or only the input (D)
# when recomputed (``llm/gated_mlp.py``); GPT-2's tanh GELU keeps 4F, BERT's exact GELU F.
_ATTENTION_WIDTH = {  # elements per position in units of D, (sdpa, eager, cached)
    "llama": (4, 3, 2), "qwen2": (4, 3, 2), "gpt2": (6, 3, 4), "bert": (4, 3, 4)}
ATTENTION_KINDS = ("sdpa", "eager", "cached")


def _llm_activation_elements(s: _Shape, tokens: int, length: int, attention: str, lighter_mlp: bool = False,
                             low_precision: bool = False) -> tuple[int, int]:
    """(compute-dtype elements, float32 elements) autograd keeps in one kept layer.

    ``tokens`` positions with gradients, each attending over ``length`` positions; ``attention``
    one of ``ATTENTION_KINDS`` (see the table above); ``low_precision``: a 16-bit compute dtype.
    """
    if attention not in ATTENTION_KINDS:
        raise BackboneError(f"attention must be one of {', '.join(ATTENTION_KINDS)}, not {attention!r}.")
    d, f, h = s.hidden, s.ffn, s.heads
    width = _ATTENTION_WIDTH[s.family][ATTENTION_KINDS.index(attention)] * d
    if attention == "eager":
        compute, floats = width + h * length, 0
        if s.family in ("llama", "qwen2") and low_precision:
            floats += h * length  # the float32 softmax output, kept beside its 16-bit copy
    else:
        compute, floats = width + length, h  # + mask; + log-sum-exp
    if s.family in ("llama", "qwen2"):
        compute += d if lighter_mlp else 3 * f
        floats += 2 * d + 2  # two RMSNorms: float32 inputs and 1/rms
    else:
        compute += 2 * d + (4 * f if s.family == "gpt2" else f)  # two LayerNorm inputs; the GELU's
        floats += 4  # their means and 1/std
    return tokens * compute, tokens * floats


def _once_elements(s: _Shape, tokens: int) -> tuple[int, int]:
    """(compute, float32) elements kept once per forward: the final (BERT: embedding) norm, rotary cos/sin."""
    if s.family in ("llama", "qwen2"):
        return tokens * 2 * (s.hidden // s.heads), tokens * (s.hidden + 1)  # cos, sin; final RMSNorm
    return tokens * s.hidden, tokens * 2  # LayerNorm input, its statistics


def _backward_transient_elements(s: _Shape, tokens: int, sequences: int, length: int, cached: bool,
                                 attention: str) -> int:
    """Compute-dtype elements of the largest working set one layer's backward pass adds to what is kept.

    The larger of the MLP's and the attention's. MLP: with the exact path's recomputation
    (LLaMA/Qwen2) gate, silu and up are made again and their three gradients with them (6F a
    position: real Qwen 2.5 0.5B, measured); otherwise the gradients of the kept intermediates (3F;
    BERT 2F). Attention: the gradients of the whole sequence's keys and values (cached path) or of
    the probabilities (eager). Read off torch's profiler on the tiny backbones and real Qwen 2.5 0.5B.
    """
    recomputed = cached and s.family in ("llama", "qwen2")
    mlp = tokens * s.ffn * (6 if recomputed else (2 if s.family == "bert" else 3))
    if cached:
        attention_gradients = sequences * length * 2 * s.kv_heads * (s.hidden // s.heads)
    else:
        attention_gradients = tokens * s.heads * length if attention == "eager" else 0
    return max(mlp, attention_gradients)


def _timellm_activation_bytes(s: _Shape, config: TimeLLMConfig, sequences: int, blockwise: bool,
                              mask_bytes: int) -> int:
    """Bytes the trainable layers keep for backward (all float32; dropout masks ``mask_bytes`` an entry)."""
    patches, prototypes = config.patch_count, config.num_prototypes
    rows = sequences * patches  # M = B*N*P patch positions
    heads_width = config.n_heads * config.d_ff
    attention_map = rows * config.n_heads * prototypes  # H*M*S
    kept = (sequences * config.patch_len * (patches + 2) * 4  # the circular convolution's padded input
            + rows * config.d_model * (mask_bytes + 4)  # patch-embedding dropout mask; queries' input
            + rows * heads_width * 4 * 2  # scaled queries; the output projection's input
            + prototypes * s.hidden * 4  # the prototypes, input of the key and value projections
            + 2 * prototypes * heads_width * 4  # keys and values (H, S, E)
            + rows * config.d_ff * 4  # the output head's input
            + sequences * config.pred_len * mask_bytes)  # the output head's dropout mask
    if blockwise:  # ``model/prototype_attention.py``: only a one-byte keep-mask of the map
        return kept + attention_map * 1
    return kept + attention_map * (4 + mask_bytes + 4)  # softmax output, dropout mask, dropped map


def plan_memory(source: BackboneSpec | Backbone, llm_layers: int, precision: str, model_config: TimeLLMConfig,
                batch_size: int, n_channels: int, training: bool = True, prompt_tokens: int | None = None,
                attention: str | None = None, compute_dtype_bytes: int | None = None,
                optimize: bool = False, device: str = "cuda") -> MemoryPlan:
    """Estimate the bytes of a run; see the module docstring for what is and is not counted.

    ``precision``: fp32 | bf16 | 4bit. ``device``: ``cuda`` or ``cpu``; on the CPU 4-bit computes
    in float32 and dropout keeps a float32 mask (CUDA's fused kernel a one-byte one).
    ``compute_dtype_bytes``: bytes of activations and of the non-quantised weights (default 4 for
    fp32, 2 for bf16, 4-bit: 2 on CUDA, 4 on the CPU).
    ``prompt_tokens``: default: the reference prompt tokenised by the backbone when one is given.
    ``optimize``: plan for this project's exact path (``TimeLLMConfig.optimize``) instead of the
    reference's: on a causal backbone the prompt runs without autograd into a key/value cache, so
    the backward pass keeps activations for the P patch positions only, plus the keys/values of
    every kept layer over the whole sequence. BERT has no cache and runs the whole sequence.
    ``attention``: how a whole sequence is attended (``sdpa`` | ``eager``); default: eager on the
    reference path (it returns every attention map), sdpa on the exact path.
    """
    if precision not in PRECISIONS:
        raise BackboneError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if device not in ("cuda", "cpu"):
        raise BackboneError(f"device must be cuda or cpu, not {device!r}.")
    s = _shape(source)
    name = source.spec.name if isinstance(source, Backbone) else source.name
    if not 1 <= llm_layers <= s.layers:
        raise BackboneError(f"{name} has {s.layers} layers; llm_layers must be between 1 and {s.layers}.")
    compute = compute_dtype_bytes or (4 if precision == "fp32" or (precision == "4bit" and device == "cpu") else 2)
    attention = attention or ("sdpa" if optimize else "eager")
    mask_bytes = 1 if device == "cuda" else 4
    if prompt_tokens is None:
        prompt_tokens = reference_prompt_tokens(source) if isinstance(source, Backbone) else DEFAULT_PROMPT_TOKENS
    patches = model_config.patch_count
    length = prompt_tokens + patches
    sequences = batch_size * n_channels  # channel independence: one LLM sequence per channel
    tokens = sequences * length

    breakdown = trainable_parameters(s.vocab, s.hidden, model_config)
    trainable = sum(breakdown.values())
    trainable_bytes = trainable * (16 if training else 4)

    cached = training and optimize and s.family != "bert"
    prompt_cache = backward_transient = prompt_pass = late_saved = 0
    if training:
        grad_tokens = sequences * patches if cached else tokens  # the cached path: only the patches
        low, high = _llm_activation_elements(s, grad_tokens, length, "cached" if cached else attention,
                                             lighter_mlp=cached, low_precision=compute < 4)
        once_low, once_high = _once_elements(s, grad_tokens)
        per_layer = low * compute + high * 4
        if cached:
            kv_width = 2 * s.kv_heads * (s.hidden // s.heads)  # keys + values a position
            per_layer += sequences * length * kv_width * compute  # attention over prompt + patches keeps them all
            # Built before the patches run, then replaced layer by layer by the keys/values above: not added.
            prompt_cache = llm_layers * sequences * prompt_tokens * kv_width * compute
        llm_activations = llm_layers * per_layer + once_low * compute + once_high * 4
        timellm = _timellm_activation_bytes(s, model_config, sequences, blockwise=optimize, mask_bytes=mask_bytes)
        if compute < 4:  # the prototypes' product upcasts the 16-bit (V, D) embeddings; addmm keeps that copy
            late_saved = s.vocab * s.hidden * 4
            timellm += late_saved
        backward_transient = _backward_transient_elements(s, grad_tokens, sequences, length, cached,
                                                          attention) * compute
        if cached:  # each layer's MLP over every prompt position (no autograd), the cache filling up
            prompt_pass = 3 * sequences * prompt_tokens * s.ffn * compute + prompt_cache
    else:
        low, high = _llm_activation_elements(s, tokens, length, attention, low_precision=compute < 4)
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
        prompt_cache_bytes=int(prompt_cache), backward_transient_bytes=int(backward_transient),
        prompt_pass_bytes=int(prompt_pass), late_saved_bytes=int(late_saved))


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
