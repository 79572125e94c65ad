"""The real small backbones (after `make models`): SmolLM2-135M (LLaMA) and all-MiniLM-L6-v2 (BERT)."""

import json

import pytest
import torch

from timellm_core.backbones import is_available, load_backbone, resolve_backbone_spec
from timellm_core.backbones.memory import plan_memory
from timellm_core.cli import main
from timellm_core.config import BackboneConfig, TimeLLMConfig

PROMPT = ("<|start_prompt|>Dataset description: The Electricity Transformer Temperature (ETT) dataset.Task "
          "description: forecast the next 96 steps given the previous 512 steps information; Input statistics: "
          "min value -1.2345678806304932, max value 2.5, median value 0.125, the trend of input is upward, "
          "top 5 lags are : [0, 24, 168, 48, 72]<|<end_prompt>|>")


def _require(name: str) -> None:
    if not is_available(resolve_backbone_spec(name)):
        pytest.fail(f"{name} is not in base_models/: run `make models` "
                    f"(or `python -m timellm_core backbones fetch {name}`) first.")


@pytest.mark.slow
def test_smollm2_135m_six_layers(capsys):
    _require("smollm2-135m")
    assert main(["backbones", "info", "smollm2-135m", "--llm_layers", "6", "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["family"], report["hidden_size"], report["layers"], report["vocab_size"]) == ("llama", 576, 6, 49152)
    assert report["causal"] is True

    backbone = load_backbone(BackboneConfig(name="smollm2-135m", llm_layers=6), device="cpu")
    encoded = backbone.tokenizer([PROMPT, "min value 1.5"], padding=True, return_tensors="pt")
    assert encoded["input_ids"].shape[1] > 100 and backbone.tokenizer.pad_token is not None
    assert backbone.tokenizer.decode(encoded["input_ids"][0], skip_special_tokens=True).startswith("<|start_prompt|>")
    with torch.no_grad():
        hidden = backbone.model(**encoded).last_hidden_state
    assert hidden.shape == (2, encoded["input_ids"].shape[1], 576) and torch.isfinite(hidden).all()

    # The planner's weight estimate against the loaded model's measured bytes.
    plan = plan_memory(backbone, 6, "fp32", TimeLLMConfig(), batch_size=1, n_channels=1)
    assert plan.frozen_weight_bytes == pytest.approx(backbone.memory_bytes, rel=0.15)
    assert plan.sequence_length - TimeLLMConfig().patch_count == pytest.approx(190, abs=30)  # digits: one token each


@pytest.mark.slow
def test_minilm_l6(capsys):
    _require("minilm-l6")
    assert main(["backbones", "info", "minilm-l6", "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["family"], report["hidden_size"], report["layers"], report["causal"]) == ("bert", 384, 6, False)
    assert report["vocab_size"] == 30522
    backbone = load_backbone(BackboneConfig(name="minilm-l6", llm_layers=6, load_in_4bit=True), device="cpu")
    assert backbone.quantized_linear_layers == 6 * 6
    ids = backbone.tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    assert ids[0, 0] == backbone.tokenizer.cls_token_id and ids.shape[1] > 50


def _top_words(backbone, text: str, count: int = 3) -> list[str]:
    """The next-token guesses of a causal LM, its last hidden state read through its own (tied) input embeddings."""
    ids = backbone.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        last = backbone.model(input_ids=ids).last_hidden_state[0, -1]
    scores = last @ backbone.word_embeddings().float().T  # (V,)
    return [backbone.tokenizer.decode(int(i)) for i in scores.topk(count).indices]


@pytest.mark.slow
def test_smollm2_knows_the_capital_of_france_through_its_own_embeddings():
    _require("smollm2-135m")
    backbone = load_backbone(BackboneConfig(name="smollm2-135m", llm_layers=30), device="cpu")
    assert backbone.num_layers == 30
    guesses = _top_words(backbone, "The capital of France is")
    assert guesses[0] == " Paris", guesses


@pytest.mark.slow
def test_minilm_puts_paraphrases_closer_than_an_unrelated_sentence():
    _require("minilm-l6")
    backbone = load_backbone(BackboneConfig(name="minilm-l6", llm_layers=6), device="cpu")
    sentences = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."]
    encoded = backbone.tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = backbone.model(**encoded).last_hidden_state  # (3, L, 384)
    mask = encoded["attention_mask"].unsqueeze(-1).float()
    embeddings = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)  # mean pooling
    paraphrase, unrelated = float(embeddings[0] @ embeddings[1]), float(embeddings[0] @ embeddings[2])
    assert paraphrase > 0.6 and unrelated < 0.2 and paraphrase > unrelated + 0.4, (paraphrase, unrelated)


_DIGEST = """
import hashlib, sys
from timellm_core.backbones import load_backbone
from timellm_core.config import BackboneConfig
backbone = load_backbone(BackboneConfig(name=sys.argv[1], llm_layers=int(sys.argv[2])), device="cpu")
digest = hashlib.sha256()
for name, tensor in sorted(backbone.model.state_dict().items()):
    digest.update(name.encode()); digest.update(tensor.contiguous().numpy().tobytes())
print(digest.hexdigest())
"""


@pytest.mark.slow
@pytest.mark.parametrize("name, layers", [("smollm2-135m", 30), ("minilm-l6", 6), ("qwen2.5-0.5b", 6)])
def test_two_loads_in_two_processes_give_bit_identical_weights(name, layers, project_root):
    import subprocess
    import sys

    _require(name)
    digests = [subprocess.run([sys.executable, "-c", _DIGEST, name, str(layers)], cwd=project_root, check=True,
                              capture_output=True, text=True, timeout=300).stdout.strip() for _ in range(2)]
    assert len(digests[0]) == 64 and digests[0] == digests[1]
