"""Tiny randomly initialised backbones, made on the fly, for tests and instant demos.

Each has real head structure (Qwen2 with grouped key/value heads), four layers and a working
byte-level BPE tokenizer trained offline on a fixed corpus of prompt-like text. Weights are
seeded, so the same name always gives the same model, and the global random state is left as it was.
"""

from __future__ import annotations

import copy
import json
import random
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

from timellm_core.backbones.families import base_model_class, base_model_kwargs
from timellm_core.backbones.hf_quiet import quiet_transformers
from timellm_core.errors import BackboneError

TINY_SEED = 20240101
TOKENIZER_VOCAB_SIZE = 1024
TINY_LAYERS = 4

# Per-family sizes differ on purpose, so downstream code that hard-codes a width fails in tests.
# Widths are multiples of 64: bitsandbytes' 4-bit blocks are 64 weights long.
TINY_SIZES: dict[str, dict[str, int]] = {
    # name: hidden, layers, attention heads, key/value heads, feed-forward width
    "tiny-gpt2": {"hidden": 64, "heads": 4, "kv_heads": 4, "ffn": 256},
    "tiny-llama": {"hidden": 128, "heads": 4, "kv_heads": 4, "ffn": 256},
    "tiny-qwen2": {"hidden": 128, "heads": 4, "kv_heads": 2, "ffn": 256},
    "tiny-bert": {"hidden": 192, "heads": 4, "kv_heads": 4, "ffn": 384},
}
TINY_FAMILY = {"tiny-gpt2": "gpt2", "tiny-llama": "llama", "tiny-qwen2": "qwen2", "tiny-bert": "bert"}
MAX_POSITIONS = 2048  # prompt (~100-300 tokens) + patches (64 at T=512) fits easily

_SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", "<s>", "</s>", "[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]

_DESCRIPTIONS = [
    "The Electricity Transformer Temperature (ETT) is a crucial indicator in the electric power "
    "long-term deployment. This dataset consists of 2 years data from two separated counties in China.",
    "Weather is recorded every 10 minutes for the 2020 whole year, which contains 21 meteorological "
    "indicators, such as air temperature, humidity, wind speed and pressure.",
    "Electricity holds the hourly electricity consumption of 321 clients from 2012 to 2014.",
    "Traffic describes the road occupancy rates measured by sensors on San Francisco freeways.",
    "Illness includes the weekly ratio of patients seen with influenza-like illness.",
    "Exchange rate collects the daily exchange rates of eight countries from 1990 to 2016.",
    "The M4 competition holds yearly, quarterly, monthly, weekly, daily and hourly series.",
    "A synthetic series: a daily and a weekly seasonal cycle, a slow trend and some noise.",
]
_WORDS = (
    "min value max value median value the trend of input is upward downward top 5 lags are "
    "forecast the next steps given the previous steps information Input statistics Dataset "
    "description Task description hourly daily weekly monthly yearly minutes hours days load oil "
    "temperature series time value values channel channels patch patches prototype prototypes "
    "season seasonal trend noise mean standard deviation increase decrease peak low high"
)


def _corpus() -> list[str]:
    """Fixed prompt-like text: the reference template filled with seeded numbers, descriptions, words."""
    rng = random.Random(TINY_SEED)
    lines = list(_DESCRIPTIONS) + [_WORDS] * 4
    for i in range(400):
        low, high = -rng.uniform(0, 4), rng.uniform(0, 4)
        median = rng.uniform(low, high)
        lags = sorted(rng.sample(range(0, 512), 5))
        trend = "upward" if i % 2 else "downward"
        pred_len, seq_len = rng.choice([24, 48, 96, 192, 336, 720]), rng.choice([96, 336, 512])
        lines.append(
            f"<|start_prompt|>Dataset description: {_DESCRIPTIONS[i % len(_DESCRIPTIONS)]}"
            f"Task description: forecast the next {pred_len} steps given the previous {seq_len} steps "
            f"information; Input statistics: min value {low}, max value {high}, median value {median}, "
            f"the trend of input is {trend}, top 5 lags are : {lags}<|<end_prompt>|>")
    lines.append("0123456789 .,;:!?()[]{}<>|-+*/=_'\" %")
    return lines


_tokenizer_lock = threading.Lock()
_trained_tokenizer: Any = None  # tokenizers.Tokenizer, trained once per process


def _base_tokenizer() -> Any:
    """The trained ``tokenizers.Tokenizer`` (byte-level BPE), cached in-process."""
    global _trained_tokenizer
    with _tokenizer_lock:
        if _trained_tokenizer is None:
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

            tokenizer = Tokenizer(models.BPE())
            tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tokenizer.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(
                vocab_size=TOKENIZER_VOCAB_SIZE, special_tokens=_SPECIAL_TOKENS, show_progress=False,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
            tokenizer.train_from_iterator(_corpus(), trainer)
            _trained_tokenizer = tokenizer  # assigned only once fully trained
        return _trained_tokenizer


_family_tokenizers: dict[str, Any] = {}


def tiny_tokenizer(name: str) -> Any:
    """The tokenizer of a tiny backbone: the family's special tokens, a pad token; a fresh copy each call.

    It is the tokenizer a saved folder of this backbone loads back to: transformers picks the
    tokenizer class from the model type (Qwen2's class splits digits one by one), so the wrapped
    tokenizer is saved and re-read through AutoTokenizer once, then cached.
    """
    family = _family(name)
    with _tokenizer_lock:
        cached = _family_tokenizers.get(name)
    if cached is None:
        from transformers import AutoTokenizer

        with tempfile.TemporaryDirectory(prefix="timellm-tokenizer-") as folder:
            _wrapped_tokenizer(name).save_pretrained(folder)
            (Path(folder) / "config.json").write_text(json.dumps({"model_type": family}))
            cached = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        with _tokenizer_lock:
            cached = _family_tokenizers.setdefault(name, cached)
    return copy.deepcopy(cached)


def _wrapped_tokenizer(name: str) -> Any:
    """The trained BPE wrapped as a PreTrainedTokenizerFast with the family's special tokens."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    family = _family(name)
    tokenizer_object = _base_tokenizer().__class__.from_str(_base_tokenizer().to_str())  # private copy
    if family == "bert":
        tokenizer_object.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[(t, tokenizer_object.token_to_id(t)) for t in ("[CLS]", "[SEP]")])
        special = dict(unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                       mask_token="[MASK]")
    elif family == "gpt2":
        special = dict(bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>",
                       pad_token="<|endoftext|>")
    else:  # llama, qwen2: pad is its own token, as in the published tokenizers with a pad token
        special = dict(bos_token="<s>", eos_token="</s>", unk_token="[UNK]", pad_token="<|pad|>")
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer_object, model_max_length=MAX_POSITIONS,
                                   **special)


def _family(name: str) -> str:
    try:
        return TINY_FAMILY[name]
    except KeyError:
        raise BackboneError(f"Unknown tiny backbone {name!r}; choose one of {', '.join(TINY_FAMILY)}.") from None


def tiny_config(name: str, attn_implementation: str = "sdpa") -> Any:
    """The Hugging Face config of a tiny backbone (all ``TINY_LAYERS`` layers)."""
    import transformers

    family, size = _family(name), TINY_SIZES[name]
    tokenizer = tiny_tokenizer(name)
    common = dict(vocab_size=len(tokenizer), attn_implementation=attn_implementation,
                  pad_token_id=tokenizer.pad_token_id)
    if family == "gpt2":
        config = transformers.GPT2Config(n_embd=size["hidden"], n_layer=TINY_LAYERS, n_head=size["heads"],
                                         n_inner=size["ffn"], n_positions=MAX_POSITIONS,
                                         bos_token_id=tokenizer.bos_token_id,
                                         eos_token_id=tokenizer.eos_token_id, **common)
    elif family == "bert":
        config = transformers.BertConfig(hidden_size=size["hidden"], num_hidden_layers=TINY_LAYERS,
                                         num_attention_heads=size["heads"], intermediate_size=size["ffn"],
                                         max_position_embeddings=MAX_POSITIONS, **common)
    else:
        config_class = transformers.LlamaConfig if family == "llama" else transformers.Qwen2Config
        config = config_class(hidden_size=size["hidden"], num_hidden_layers=TINY_LAYERS,
                              num_attention_heads=size["heads"], num_key_value_heads=size["kv_heads"],
                              intermediate_size=size["ffn"], max_position_embeddings=MAX_POSITIONS,
                              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                              tie_word_embeddings=False, **common)
    return config


def build_tiny_model(name: str, attn_implementation: str = "sdpa") -> torch.nn.Module:
    """The seeded base model (no LM head) with all ``TINY_LAYERS`` layers, float32 on CPU."""
    config = tiny_config(name, attn_implementation)
    model_class = base_model_class(_family(name))
    # fork_rng: a seeded build must not change the caller's random stream (training seeds its own).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model = model_class(config, **base_model_kwargs(_family(name)))
    return model.float().eval()


def save_tiny_backbone(name: str, folder: str | Path) -> Path:
    """Write a tiny backbone as a normal Hugging Face folder (config.json, model.safetensors, tokenizer)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = build_tiny_model(name)
    with quiet_transformers():
        model.save_pretrained(folder, safe_serialization=True)
    tiny_tokenizer(name).save_pretrained(folder)
    return folder
