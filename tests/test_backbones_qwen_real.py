"""Real Qwen 2.5 (Coder 0.5B Instruct, fetched by `make models`): known answer, NF4 training, exactness."""

import functools

import pytest
import torch

from test_backbones_real import _require, _top_words
from test_speed_exact import assert_same, config, windows
from timellm_core.backbones import load_backbone
from timellm_core.config import BackboneConfig
from timellm_core.model import TimeLLM

QWEN = "qwen2.5-0.5b"


@functools.lru_cache(maxsize=None)
def qwen(layers: int, load_in_4bit: bool = False):
    _require(QWEN)
    return load_backbone(BackboneConfig(name=QWEN, llm_layers=layers, load_in_4bit=load_in_4bit), device="cpu")


@pytest.mark.slow
def test_qwen_knows_the_capital_of_france_through_its_own_embeddings():
    backbone = qwen(24)
    assert (backbone.family, backbone.hidden_size, backbone.num_layers) == ("qwen2", 896, 24)
    assert _top_words(backbone, "The capital of France is")[0] == " Paris"


@pytest.mark.slow
def test_one_nf4_training_step_on_real_qwen():
    import bitsandbytes as bnb

    backbone = qwen(2, load_in_4bit=True)
    assert type(backbone.tokenizer).__name__.startswith("Qwen2") and len(backbone.tokenizer) > 150_000
    assert sum(isinstance(m, bnb.nn.Linear4bit) for m in backbone.model.modules()) == 2 * 7
    assert backbone.quantized_linear_layers == 14
    torch.manual_seed(0)
    model = TimeLLM(config(dropout=0.1), backbone, description="Hourly load of an electricity transformer.")
    model.train()
    x = windows(batch=2, channels=2)
    forecast = model(x)
    loss = torch.nn.functional.mse_loss(forecast, torch.zeros_like(forecast))
    loss.backward()
    assert torch.isfinite(forecast).all() and torch.isfinite(loss)
    trainable = list(model.trainable_parameters())
    assert trainable and all(p.grad is not None and torch.isfinite(p.grad).all() for p in trainable)
    assert model.reprogramming.query_projection.weight.grad.abs().sum() > 0  # reached through the 4-bit LLM
    assert all(p.grad is None for p in backbone.model.parameters())
    assert model.text_prototypes.mapping.weight.shape == (20, 151936)


@pytest.mark.slow
def test_exact_path_equals_the_unoptimised_path_with_qwens_tokenizer():
    backbone = qwen(2)
    torch.manual_seed(0)
    optimized = TimeLLM(config(), backbone, description="Paired test series.")
    reference = TimeLLM(config(optimize=False), backbone, description="Paired test series.")
    reference.load_trainable_state_dict(optimized.trainable_state_dict())
    optimized.eval(), reference.eval()
    x = windows()
    assert_same(optimized, reference, x)  # forecast and every gradient within 1e-4 relative
    with torch.no_grad():
        _, trace = optimized(x, trace=True)
        _, reference_trace = reference(x, trace=True)
    # The cached path tokenises prefix and statistics apart; the ids equal the whole prompt's.
    assert trace.llm_path == "cached" and reference_trace.llm_path == "reference"
    assert trace.prompt_token_ids == reference_trace.prompt_token_ids


@pytest.mark.slow
def test_the_seed_command_line_names_the_right_llm_dim_for_real_qwen(tmp_path, capsys):
    from timellm_core.backbones import resolve_backbone_spec
    from timellm_core.backbones.catalogue import local_path
    from timellm_core.cli import main

    _require(QWEN)
    folder = local_path(resolve_backbone_spec(QWEN))
    command = ["train", "--llm_model", "QWEN", "--llm_model_path", str(folder), "--llm_dim", "2048",
               "--load_in_4bit", "--llm_layers", "6", "--seq_len", "32", "--pred_len", "8",
               "--runs_dir", str(tmp_path)]
    assert main(command) == 2
    assert "whose hidden size is 896. Use llm_dim=896" in capsys.readouterr().err
