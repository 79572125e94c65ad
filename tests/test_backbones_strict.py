"""Pretrained means pretrained: a weight the checkpoint lacks is an error, never a random initialisation.

Also: an older GGUF conversion without its tied input embeddings is repaired on load, and a GGUF
file's layers are read selectively, giving back exactly the weights that were written.
"""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from timellm_core.backbones import load_backbone, save_tiny_backbone
from timellm_core.backbones.conversion import CONVERTED_MARKER, conversion_format, repair_converted_folder
from timellm_core.backbones.gguf_weights import read_gguf_weights
from timellm_core.backbones.load_report import check_load_report
from timellm_core.backbones.tiny import build_tiny_model
from timellm_core.config import BackboneConfig
from timellm_core.errors import BackboneError


@pytest.fixture
def llama_folder(tmp_path):
    return save_tiny_backbone("tiny-llama", tmp_path / "tiny-llama-folder")


def _rewrite(folder, change):
    path = folder / "model.safetensors"
    weights = load_file(str(path))
    change(weights)
    save_file(weights, str(path), metadata={"format": "pt"})


def test_a_missing_weight_is_an_error_naming_it(llama_folder):
    _rewrite(llama_folder, lambda weights: weights.pop("embed_tokens.weight"))
    with pytest.raises(BackboneError, match=r"does not hold every weight.*embed_tokens\.weight.*random"):
        load_backbone(BackboneConfig(name=str(llama_folder), llm_layers=2), device="cpu")


def test_a_missing_weight_inside_a_kept_layer_is_an_error_but_not_past_the_kept_layers(llama_folder):
    _rewrite(llama_folder, lambda weights: weights.pop("layers.3.mlp.up_proj.weight"))
    assert load_backbone(BackboneConfig(name=str(llama_folder), llm_layers=3), device="cpu").num_layers == 3
    with pytest.raises(BackboneError, match=r"layers\.3\.mlp\.up_proj\.weight"):
        load_backbone(BackboneConfig(name=str(llama_folder), llm_layers=4), device="cpu")


def test_a_shape_mismatch_is_an_error(llama_folder):
    _rewrite(llama_folder, lambda weights: weights.update({"norm.weight": torch.ones(7)}))
    with pytest.raises(BackboneError, match=r"norm\.weight"):
        load_backbone(BackboneConfig(name=str(llama_folder), llm_layers=4), device="cpu")


def test_the_4bit_path_is_strict_too(llama_folder):
    _rewrite(llama_folder, lambda weights: weights.pop("layers.0.self_attn.q_proj.weight"))
    with pytest.raises(BackboneError, match=r"q_proj"):
        load_backbone(BackboneConfig(name=str(llama_folder), llm_layers=2, load_in_4bit=True), device="cpu")


def test_the_report_allows_only_what_truncation_drops():
    clean = {"missing_keys": set(), "mismatched_keys": set(), "error_msgs": []}
    dropped = {"model.layers.5.mlp.up_proj.weight", "lm_head.weight", "encoder.layer.3.output.dense.bias",
               "pooler.dense.weight", "cls.predictions.bias", "h.2.attn.c_attn.weight"}
    check_load_report({**clean, "unexpected_keys": dropped}, "model", kept_layers=2)
    with pytest.raises(BackboneError, match=r"layers\.1\."):
        check_load_report({**clean, "unexpected_keys": {"model.layers.1.mlp.up_proj.weight"}}, "model", 2)
    with pytest.raises(BackboneError, match="extra_adapter"):
        check_load_report({**clean, "unexpected_keys": {"extra_adapter.weight"}}, "model", 2)
    many = {f"layers.0.w{i}" for i in range(9)}
    with pytest.raises(BackboneError, match=r"and 3 more \(9 missing\)"):
        check_load_report({**clean, "missing_keys": many, "unexpected_keys": set()}, "model", 2)


def _older_conversion(folder, tied=True):
    """A folder as the first GGUF conversion wrote it: causal-LM names, the tied embeddings saved as lm_head."""
    model = build_tiny_model("tiny-llama")
    weights = {f"model.{key}": value.clone() for key, value in model.state_dict().items()}
    weights["lm_head.weight"] = weights.pop("model.embed_tokens.weight")
    save_tiny_backbone("tiny-llama", folder)
    config = json.loads((folder / "config.json").read_text())
    config["tie_word_embeddings"] = tied
    (folder / "config.json").write_text(json.dumps(config))
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / CONVERTED_MARKER).write_text(json.dumps({"converted_from": "tiny.gguf"}))
    return model


def test_an_older_conversion_is_repaired_on_load(tmp_path):
    folder = tmp_path / "converted"
    original = _older_conversion(folder)
    assert conversion_format(folder) == 1
    backbone = load_backbone(BackboneConfig(name=str(folder), llm_layers=2), device="cpu")
    assert backbone.notes[0].startswith(f"Repaired {folder}") and "trained again" in backbone.notes[0]
    assert torch.equal(backbone.word_embeddings(), original.embed_tokens.weight)
    assert torch.equal(backbone.model.layers[1].mlp.up_proj.weight, original.layers[1].mlp.up_proj.weight)
    assert conversion_format(folder) == 2 and not list(folder.glob(".*repairing"))
    again = load_backbone(BackboneConfig(name=str(folder), llm_layers=2), device="cpu")
    assert not any(note.startswith("Repaired") for note in again.notes)
    assert torch.equal(again.word_embeddings(), backbone.word_embeddings())


def test_an_older_conversion_without_a_tied_head_to_restore_from_says_to_fetch_again(tmp_path):
    folder = tmp_path / "converted"
    _older_conversion(folder, tied=False)
    with pytest.raises(BackboneError, match="fetch NAME` again"):
        repair_converted_folder(folder)
    assert repair_converted_folder(tmp_path) is None  # not a conversion: nothing to do


def _llama_cpp_permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's converter stores LLaMA's query/key rows interleaved per head in this order."""
    return weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(
        weights.shape)


def _write_llama_gguf(path, model):
    gguf = pytest.importorskip("gguf")
    config = model.config
    names = {"embed_tokens.weight": "token_embd.weight", "norm.weight": "output_norm.weight"}
    parts = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_embedding_length(config.hidden_size)
    # What transformers needs to build the config from the file alone.
    writer.add_context_length(config.max_position_embeddings)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_vocab_size(config.vocab_size)
    for key, value in model.state_dict().items():
        array = value.numpy().astype(np.float32)
        if key.startswith("layers."):
            _, index, *rest = key.split(".")
            module, suffix = ".".join(rest[:-1]), rest[-1]
            if module == "self_attn.q_proj":
                array = _llama_cpp_permute(array, config.num_attention_heads)
            elif module == "self_attn.k_proj":
                array = _llama_cpp_permute(array, config.num_key_value_heads)
            writer.add_tensor(f"blk.{index}.{parts[module]}.{suffix}", array)
        else:
            writer.add_tensor(names[key], array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_a_gguf_file_is_read_layer_by_layer_into_the_weights_that_were_written(tmp_path):
    model = build_tiny_model("tiny-llama")
    path = tmp_path / "tiny-llama.gguf"
    _write_llama_gguf(path, model)
    done = []
    weights = read_gguf_weights(path, model.config, keep_layers=2, progress=lambda d, total: done.append(total))
    expected = {f"model.{key}": value for key, value in model.state_dict().items()
                if not key.startswith(("layers.2.", "layers.3."))}
    assert set(weights) == set(expected) and done[-1] == len(expected)  # blocks 2 and 3 are never read
    for key, value in expected.items():
        assert torch.equal(weights[key], value), key  # query/key rows back in transformers' order

    # A file cut short names the tensor that runs past its end.
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size - 4096])
    with pytest.raises(BackboneError, match="truncated: tensor"):
        read_gguf_weights(cut, model.config)


def test_a_pad_token_past_the_embedding_table_is_replaced_by_one_inside(llama_folder):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(llama_folder))
    rows = build_tiny_model("tiny-llama").config.vocab_size
    tokenizer.add_special_tokens({"pad_token": "<|extra_pad|>"})
    assert tokenizer.pad_token_id >= rows  # one token more than the model's vocabulary
    tokenizer.save_pretrained(llama_folder)
    backbone = load_backbone(BackboneConfig(name=str(llama_folder), llm_layers=2), device="cpu")
    assert backbone.tokenizer.pad_token_id < rows
    assert any("no row in the" in note and "<|extra_pad|>" in note for note in backbone.notes)
    padded = backbone.tokenizer(["min value 1", "a longer prompt with more words"], padding=True,
                                return_tensors="pt")
    assert int(padded["input_ids"].max()) < rows
    backbone.model(**padded)  # the embedding lookup no longer fails


def test_a_gguf_file_loads_in_4bit_through_its_kept_layers(tmp_path):
    """Any GGUF works with 4-bit (de-quantised, then NF4), and only the kept layers are read."""
    from timellm_core.backbones import loading
    from timellm_core.backbones.catalogue import resolve_backbone_spec
    from timellm_core.backbones.quantization import count_quantized_linear

    model = build_tiny_model("tiny-llama")
    path = tmp_path / "tiny-llama.gguf"
    _write_llama_gguf(path, model)
    spec = resolve_backbone_spec(str(path))
    source = loading.WeightsSource(path.parent, path.name, str(path))
    for four_bit in (False, True):
        config = BackboneConfig(name=str(path), llm_layers=2, load_in_4bit=four_bit)
        loaded = loading._from_pretrained(spec, source, config, torch.device("cpu"), torch.float32, "sdpa")
        assert len(loaded.layers) == 2 and count_quantized_linear(loaded) == (14 if four_bit else 0)
        assert torch.equal(loaded.get_input_embeddings().weight, model.embed_tokens.weight)
        with torch.no_grad():
            assert torch.isfinite(loaded(input_ids=torch.tensor([[1, 5, 9, 200]])).last_hidden_state).all()
    with pytest.raises(BackboneError, match="Use llm_dim=128"):
        loading._from_pretrained(spec, source, BackboneConfig(name=str(path), llm_layers=2, llm_dim=896),
                                 torch.device("cpu"), torch.float32, "sdpa")
