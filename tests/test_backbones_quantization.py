"""4-bit NF4 on CPU: the CLI report, forward + backward to the inputs, GPT-2's Conv1D, missing bitsandbytes."""

import json
import sys

import pytest
import torch

from timellm_core.backbones import load_backbone
from timellm_core.backbones.families import transformer_layers
from timellm_core.backbones.quantization import storage_bytes
from timellm_core.cli import main
from timellm_core.config import BackboneConfig
from timellm_core.errors import BackboneError


def _forward_backward(backbone, inputs, weights):
    inputs = inputs.clone().requires_grad_(True)
    hidden = backbone.model(inputs_embeds=inputs, attention_mask=torch.ones(inputs.shape[:2])).last_hidden_state
    (hidden * weights).sum().backward()
    return hidden.detach(), inputs.grad


def test_cli_info_tiny_qwen2_in_4bit_and_gradients_reach_the_inputs(capsys):
    assert main(["backbones", "info", "tiny-qwen2", "--load_in_4bit", "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["quantized_linear_layers"] == 4 * 7  # q, k, v, o, gate, up, down in each of 4 layers
    assert report["family"] == "qwen2" and report["layers"] == 4 and report["load_in_4bit"] is True
    full = load_backbone(BackboneConfig(name="tiny-qwen2", llm_layers=4), device="cpu")
    assert report["params"] == sum(p.numel() for p in full.model.parameters())
    assert report["memory_bytes"] < full.memory_bytes

    quantized = load_backbone(BackboneConfig(name="tiny-qwen2", llm_layers=4, load_in_4bit=True), device="cpu")
    assert quantized.memory_bytes == report["memory_bytes"] == storage_bytes(quantized.model)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(2, 9, 128, generator=generator)
    weights = torch.randn(2, 9, 128, generator=generator)
    hidden_4bit, grad_4bit = _forward_backward(quantized, inputs, weights)
    hidden_full, grad_full = _forward_backward(full, inputs, weights)
    assert torch.isfinite(grad_4bit).all() and grad_4bit.abs().sum() > 0
    # NF4 changes numbers slightly, not the direction of outputs or gradients.
    assert torch.nn.functional.cosine_similarity(hidden_4bit.flatten(), hidden_full.flatten(), dim=0) > 0.95
    assert torch.nn.functional.cosine_similarity(grad_4bit.flatten(), grad_full.flatten(), dim=0) > 0.9
    assert all(p.grad is None for p in quantized.model.parameters())


def test_training_still_works_after_a_no_grad_evaluation():
    # bitsandbytes repacks CPU weights for inference on the first no-grad forward unless told not to.
    backbone = load_backbone(BackboneConfig(name="tiny-llama", llm_layers=2, load_in_4bit=True), device="cpu")
    inputs, weights = torch.randn(1, 6, 128), torch.randn(1, 6, 128)
    first_hidden, first_grad = _forward_backward(backbone, inputs, weights)
    with torch.no_grad():
        evaluated = backbone.model(inputs_embeds=inputs).last_hidden_state
    second_hidden, second_grad = _forward_backward(backbone, inputs, weights)
    torch.testing.assert_close(evaluated, first_hidden)
    torch.testing.assert_close(second_grad, first_grad)


def test_gpt2_conv1d_layers_are_quantised():
    from transformers.pytorch_utils import Conv1D

    full = load_backbone(BackboneConfig(name="tiny-gpt2", llm_layers=2), device="cpu")
    assert sum(isinstance(m, Conv1D) for m in full.model.modules()) == 2 * 4
    quantized = load_backbone(BackboneConfig(name="tiny-gpt2", llm_layers=2, load_in_4bit=True), device="cpu")
    assert quantized.quantized_linear_layers == 2 * 4  # c_attn, attn.c_proj, c_fc, mlp.c_proj
    assert not any(isinstance(m, Conv1D) for m in quantized.model.modules())
    assert any("Conv1D" in note for note in quantized.notes)
    # The weights were transposed correctly: outputs agree with the full-precision model.
    inputs = torch.randn(2, 8, 64, generator=torch.Generator().manual_seed(1))
    cosine = torch.nn.functional.cosine_similarity(quantized.model(inputs_embeds=inputs).last_hidden_state.flatten(),
                                                   full.model(inputs_embeds=inputs).last_hidden_state.flatten(), dim=0)
    assert cosine > 0.98


def test_bert_and_llama_quantise_every_projection():
    bert = load_backbone(BackboneConfig(name="tiny-bert", llm_layers=3, load_in_4bit=True), device="cpu")
    assert bert.quantized_linear_layers == 3 * 6  # query, key, value, attention output, intermediate, output
    assert not bert.causal
    attention = transformer_layers(bert.model)[0].attention.self.query
    assert type(attention).__name__ == "Linear4bit"


def test_missing_bitsandbytes_offers_to_continue_without_4bit(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # makes `import bitsandbytes` raise ImportError
    with pytest.raises(BackboneError, match="load_in_4bit=False"):
        load_backbone(BackboneConfig(name="tiny-llama", llm_layers=1, load_in_4bit=True), device="cpu")
    monkeypatch.undo()
    assert load_backbone(BackboneConfig(name="tiny-llama", llm_layers=1), device="cpu").quantized_linear_layers == 0
