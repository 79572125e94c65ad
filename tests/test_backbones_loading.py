"""Resolving names and paths, loading from a local folder, and the messages for each user mistake."""

import json
import logging

import pytest
import torch

from timellm_core.backbones import (
    CATALOGUE, is_available, list_backbones, load_backbone, resolve_backbone_spec, save_tiny_backbone)
from timellm_core.backbones.gguf_header import gguf_facts, read_gguf_header
from timellm_core.config import BackboneConfig
from timellm_core.errors import BackboneError


@pytest.fixture(scope="module")
def qwen_folder(tmp_path_factory):
    return save_tiny_backbone("tiny-qwen2", tmp_path_factory.mktemp("models") / "tiny-qwen2-folder")


def test_local_folder_loads_like_the_in_process_model(qwen_folder):
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in qwen_folder.iterdir()}
    spec = resolve_backbone_spec(str(qwen_folder))
    assert (spec.family, spec.hidden_size, spec.num_layers, spec.num_kv_heads) == ("qwen2", 128, 4, 2)
    assert is_available(spec)
    from_folder = load_backbone(BackboneConfig(name=str(qwen_folder), llm_layers=3), device="cpu")
    in_process = load_backbone(BackboneConfig(name="tiny-qwen2", llm_layers=3), device="cpu")
    assert from_folder.num_layers == 3 and type(from_folder.model).__name__ == "Qwen2Model"
    assert not any(p.requires_grad for p in from_folder.model.parameters())
    ids = from_folder.tokenizer("forecast the next 96 steps", return_tensors="pt")["input_ids"]
    assert torch.equal(ids, in_process.tokenizer("forecast the next 96 steps", return_tensors="pt")["input_ids"])
    torch.testing.assert_close(from_folder.model(input_ids=ids).last_hidden_state,
                               in_process.model(input_ids=ids).last_hidden_state)


def test_truncation_happens_before_weights_load(qwen_folder):
    # The checkpoint holds 4 layers; a 1-layer load must allocate only one.
    backbone = load_backbone(BackboneConfig(name=str(qwen_folder), llm_layers=1), device="cpu")
    names = {name for name, _ in backbone.model.named_parameters()}
    assert any(name.startswith("layers.0.") for name in names)
    assert not any(name.startswith("layers.1.") for name in names)
    full = load_backbone(BackboneConfig(name=str(qwen_folder), llm_layers=4), device="cpu")
    assert backbone.memory_bytes < full.memory_bytes


def test_folder_errors(tmp_path, qwen_folder):
    with pytest.raises(BackboneError, match="no folder or file at that path"):
        resolve_backbone_spec(str(tmp_path / "does-not-exist"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackboneError, match="has no config.json"):
        resolve_backbone_spec(str(empty))
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(BackboneError, match="holds a 't5' model; supported model types"):
        resolve_backbone_spec(str(odd))
    with pytest.raises(BackboneError, match="qwen2 has 4 layers|has 4 layers; llm_layers=9"):
        load_backbone(BackboneConfig(name=str(qwen_folder), llm_layers=9), device="cpu")
    with pytest.raises(BackboneError, match="Use llm_dim=128"):
        load_backbone(BackboneConfig(name=str(qwen_folder), llm_layers=2, llm_dim=2048), device="cpu")


def test_fake_and_truncated_gguf_files(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf file at all")
    with pytest.raises(BackboneError, match="is not a GGUF file"):
        resolve_backbone_spec(str(fake))
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(b"GGUF\x03\x00\x00\x00\x01\x00")
    with pytest.raises(BackboneError, match="damaged or truncated GGUF"):
        resolve_backbone_spec(str(truncated))
    with pytest.raises(BackboneError, match="does not exist"):
        resolve_backbone_spec(str(tmp_path / "missing.gguf"))


def test_gguf_header_reader_on_a_written_file(tmp_path):
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(4)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_token_list(["a", "b", "c"])
    writer.add_tensor("token_embd.weight", torch.zeros(3, 64).numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    facts = gguf_facts(read_gguf_header(path))
    assert facts["architecture"] == "llama" and facts["num_layers"] == 4 and facts["hidden_size"] == 64
    assert facts["vocab_size"] == 3
    spec = resolve_backbone_spec(str(path))
    assert spec.family == "llama" and spec.gguf_file.endswith("tiny.gguf")


def test_names_reference_flags_and_hub_ids():
    assert resolve_backbone_spec("SmolLM2-135M").name == "smollm2-135m"
    assert resolve_backbone_spec("QWEN").name == "qwen2.5-3b"
    assert resolve_backbone_spec("LLAMA").hub_id == "huggyllama/llama-7b"
    assert resolve_backbone_spec("GPT2").family == "gpt2"
    assert resolve_backbone_spec("BERT").family == "bert"
    assert resolve_backbone_spec("Qwen/Qwen2.5-3B").name == "qwen2.5-3b"
    with pytest.raises(BackboneError, match="backbones fetch someone/unknown-model"):
        resolve_backbone_spec("someone/unknown-model")
    with pytest.raises(BackboneError, match="Choose one of"):
        resolve_backbone_spec("gpt5")
    names = [spec.name for spec in list_backbones()]
    assert names[0] == "smollm2-135m" and {"tiny-gpt2", "tiny-llama", "tiny-bert", "tiny-qwen2"} <= set(names)


def test_missing_pretrained_model_says_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("TIMELLM_BASE_MODELS", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty Hugging Face cache
    assert not is_available(CATALOGUE["qwen2.5-3b"])
    with pytest.raises(BackboneError, match="backbones fetch qwen2.5-3b"):
        load_backbone(BackboneConfig(name="qwen2.5-3b", llm_layers=2), device="cpu")


def test_failed_load_leaves_no_global_state_behind(qwen_folder):
    from transformers.utils import logging as hf_logging

    level = logging.getLogger("transformers").level
    dtype = torch.get_default_dtype()
    with pytest.raises(BackboneError):
        load_backbone(BackboneConfig(name=str(qwen_folder), llm_layers=99), device="cpu")
    (qwen_folder / "model.safetensors").rename(qwen_folder / "weights.moved")
    try:
        with pytest.raises(BackboneError, match=r"no \*\.safetensors weights"):
            load_backbone(BackboneConfig(name=str(qwen_folder), llm_layers=2), device="cpu")
    finally:
        (qwen_folder / "weights.moved").rename(qwen_folder / "model.safetensors")
    assert logging.getLogger("transformers").level == level
    assert hf_logging.is_progress_bar_enabled()
    assert torch.get_default_dtype() == dtype
    assert load_backbone(BackboneConfig(name=str(qwen_folder), llm_layers=2), device="cpu").num_layers == 2
