"""``bench --reference DIR``: the checkout check, the loader patched in the reference's module only, the
report with ratios against the reference, and the worker run on a small stand-in checkout.

The real reference code is never needed: the stand-in ``models/TimeLLM.py`` written here loads its
LLaMA the way the 2024 reference does (LlamaConfig / LlamaModel / LlamaTokenizer.from_pretrained of
a hub id, eager attention with every map returned, patches cast to bfloat16 before a float32
convolution), so the worker's suppliers and shims meet what they are written for.
"""

from __future__ import annotations

import json
import textwrap
import types

import pytest
import torch

from timellm_core.benchmarking import reference_checkout
from timellm_core.benchmarking.reference_checkout import (
    REFERENCE_WORKER, check_reference_checkout, reference_configs, supply_pretrained)
from timellm_core.benchmarking.report import measured_paths, speed_ratios, targets, to_markdown
from timellm_core.cli import main
from timellm_core.errors import ConfigError

STAND_IN_MODEL = '''
    import torch
    import torch.nn as nn
    from transformers import LlamaConfig, LlamaModel, LlamaTokenizer

    from layers.Embed import PatchEmbedding


    class Model(nn.Module):
        def __init__(self, configs, patch_len=16, stride=8):
            super().__init__()
            self.pred_len, self.seq_len = configs.pred_len, configs.seq_len
            self.llama_config = LlamaConfig.from_pretrained('huggyllama/llama-7b')
            self.llama_config.num_hidden_layers = configs.llm_layers
            self.llama_config.output_attentions = True
            self.llama_config.output_hidden_states = True
            self.llm_model = LlamaModel.from_pretrained('huggyllama/llama-7b', trust_remote_code=True,
                                                        local_files_only=True, config=self.llama_config)
            self.tokenizer = LlamaTokenizer.from_pretrained('huggyllama/llama-7b', local_files_only=True)
            self.tokenizer.pad_token = self.tokenizer.eos_token
            for param in self.llm_model.parameters():
                param.requires_grad = False
            self.description = configs.content if configs.prompt_domain else 'The ETT sentence.'
            self.patch_embedding = PatchEmbedding(configs.d_model, configs.patch_len, configs.stride)
            self.reprogramming = nn.Linear(configs.d_model, configs.llm_dim)
            self.patch_nums = int((configs.seq_len - configs.patch_len) / configs.stride + 2)
            self.head = nn.Linear(configs.d_ff * self.patch_nums, configs.pred_len)
            self.d_ff = configs.d_ff

        def forward(self, x_enc, x_mark_enc, x_dec, x_mark_dec, mask=None):
            B, T, N = x_enc.shape
            series = x_enc.permute(0, 2, 1).reshape(B * N, T)
            prompt = [f"Dataset description: {self.description} min {float(s.min())}" for s in series]
            ids = self.tokenizer(prompt, return_tensors="pt", padding=True).input_ids
            prompt_embeddings = self.llm_model.get_input_embeddings()(ids)
            patches = self.patch_embedding(x_enc.permute(0, 2, 1).contiguous().to(torch.bfloat16))
            out = self.llm_model(inputs_embeds=torch.cat([prompt_embeddings, self.reprogramming(patches)], dim=1))
            assert out.attentions is not None and out.hidden_states is not None  # eager, every map returned
            hidden = out.last_hidden_state[:, -self.patch_nums:, :self.d_ff].reshape(B, N, -1)
            return self.head(hidden).permute(0, 2, 1)
'''

STAND_IN_EMBED = '''
    import torch
    import torch.nn as nn


    class PatchEmbedding(nn.Module):
        def __init__(self, d_model, patch_len, stride):
            super().__init__()
            self.patch_len, self.stride = patch_len, stride
            self.value_embedding = nn.Conv1d(patch_len, d_model, kernel_size=3, padding=1, bias=False)

        def forward(self, x):  # (B, N, T)
            x = torch.cat([x, x[:, :, -1:].repeat(1, 1, self.stride)], dim=-1)
            x = x.unfold(-1, self.patch_len, self.stride).flatten(0, 1)  # (B*N, P, patch_len)
            return self.value_embedding(x.transpose(1, 2)).transpose(1, 2)
'''


def write_stand_in_checkout(folder):
    (folder / "models").mkdir(parents=True)
    (folder / "layers").mkdir()
    for package in ("models", "layers"):
        (folder / package / "__init__.py").write_text("")
    (folder / "models" / "TimeLLM.py").write_text(textwrap.dedent(STAND_IN_MODEL))
    (folder / "layers" / "Embed.py").write_text(textwrap.dedent(STAND_IN_EMBED))
    return folder


# -- the checkout and the command line ------------------------------------------------------------

def test_a_missing_or_wrong_reference_folder_is_a_clear_message(tmp_path, capsys):
    assert main(["bench", "--reference", str(tmp_path / "nowhere")]) == 2
    assert "there is no such folder" in capsys.readouterr().err
    assert main(["bench", "--reference", str(tmp_path)]) == 2
    message = capsys.readouterr().err
    assert "models/TimeLLM.py is not in this folder" in message and "KimMeen/Time-LLM" in message
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "TimeLLM.py").write_text("print('not a model file')\n")
    assert main(["bench", "--reference", str(tmp_path)]) == 2
    assert "defines no Model class" in capsys.readouterr().err
    assert main(["bench", "--reference_bf16"]) == 2
    assert "--reference DIR" in capsys.readouterr().err
    assert main(["bench", "--steps", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_a_checkout_is_accepted_and_resolved(tmp_path):
    folder = write_stand_in_checkout(tmp_path / "Time-LLM")
    assert check_reference_checkout(str(tmp_path / "Time-LLM" / ".." / "Time-LLM")) == folder.resolve()


def test_the_loaders_are_replaced_in_the_reference_module_only():
    import transformers

    module = types.ModuleType("stand_in")
    module.LlamaConfig, module.LlamaModel, module.LlamaTokenizer = (
        transformers.LlamaConfig, transformers.LlamaModel, transformers.LlamaTokenizer)
    made = supply_pretrained(module, lambda *a, **k: "config", lambda *a, config=None, **k: ("model", config),
                             lambda *a, **k: "tokenizer")
    assert sorted(made) == ["LlamaConfig", "LlamaModel", "LlamaTokenizer"]
    assert module.LlamaModel.from_pretrained("huggyllama/llama-7b", config="c") == ("model", "c")
    assert module.LlamaModel.calls == [(("huggyllama/llama-7b",), {"config": "c"})]
    assert module.LlamaConfig.from_pretrained("x") == "config"
    assert module.LlamaModel.base_model_prefix == transformers.LlamaModel.base_model_prefix  # the rest: the class's
    assert transformers.LlamaModel.from_pretrained.__qualname__.endswith("from_pretrained")  # untouched
    assert not isinstance(transformers.LlamaModel, reference_checkout.PretrainedSupplier)
    with pytest.raises(ConfigError, match="cannot give it its backbone"):
        supply_pretrained(types.ModuleType("empty"), str, str, str)


def test_the_configs_are_run_main_defaults_with_our_settings():
    configs = reference_configs(seq_len=512, llm_dim=576, content="words")
    assert (configs.seq_len, configs.llm_dim, configs.content) == (512, 576, "words")
    assert (configs.task_name, configs.label_len, configs.n_heads, configs.patch_len, configs.stride) == (
        "long_term_forecast", 48, 8, 16, 8)
    with pytest.raises(ValueError, match="llm_dims"):
        reference_configs(llm_dims=1)


def test_the_reference_gets_the_weights_our_paths_get():
    from timellm_core.benchmarking.reference_speed import ReferenceBackbone
    from timellm_core.benchmarking.speed import smollm2_shaped_backbone

    supplier = ReferenceBackbone()
    config = supplier.config("huggyllama/llama-7b")
    config.num_hidden_layers = 1  # what the reference does with llm_layers
    config.output_attentions = True  # accepted: the config is made for eager attention
    theirs = supplier.model("huggyllama/llama-7b", config=config).state_dict()
    ours = smollm2_shaped_backbone(1)[0].model.state_dict()
    assert theirs.keys() == ours.keys() and all(torch.equal(theirs[name], ours[name]) for name in ours)


# -- the report -------------------------------------------------------------------------------------

def fake_results(reference: bool, bf16: bool = False) -> dict:
    def row(train, rss, **extra):
        return {"train_step_s": train, "eval_step_s": train / 2, "peak_rss_bytes": rss, "prompt_prefix_tokens": 100,
                "prompt_series_tokens_mean": 107, "patch_count": 64, "tokenizer": "tiny", **extra}

    settings = {"llm_layers": 6, "batch_size": 8, "channels": 7, "seq_len": 512, "pred_len": 96, "d_model": 32,
                "d_ff": 32, "steps": 1, "warmup": 0, "rounds": 1, "reference_dir": "/ref" if reference else None,
                "reference_bf16": bf16}
    results = {
        "settings": settings, "tokenizer": "tiny",
        "machine": {"cpu": "test cpu", "logical_cores": 2, "torch": "x", "torch_threads": 2,
                    "load_average_1m_before": 0.5, "load_average_1m_after": 0.7},
        "unoptimized": row(20.0, 6e9), "exact": row(4.0, 2e9), "fast": row(2.0, 2.2e9),
        "exact_max_rel_diff": 3e-6, "exact_forecast_max_rel_diff": 1e-7, "exact_gradient_max_rel_diff": 3e-6,
        "key_bias_gradient_noise": 1e-10,
        "trace_forward_one_window": [{"backbone": "random", "shape": [1, 512, 7], "first_s": 1.0, "median_s": 0.5}],
    }
    reference_facts = dict(reference_dir="/ref", supplied=["LlamaConfig", "LlamaModel", "LlamaTokenizer"],
                           sequence_length=278, shims=["shim one", "shim two"])
    if reference:
        results["reference"] = row(16.0, 8e9, **reference_facts)
    if bf16:
        results["reference-bf16"] = row(8.0, 7e9, **reference_facts)
    results.update(speed_ratios(results))
    results["targets"] = targets(results)
    return results


def test_the_paths_measured_follow_the_settings():
    assert measured_paths({"reference_dir": None}) == ("unoptimized", "exact", "fast")
    assert measured_paths({"reference_dir": "/ref"}) == ("reference", "unoptimized", "exact", "fast")
    assert measured_paths({"reference_dir": "/ref", "reference_bf16": True})[:2] == ("reference", "reference-bf16")


def test_with_the_reference_the_ratios_and_the_report_are_against_it():
    results = fake_results(reference=True, bf16=True)
    assert results["baseline"] == "reference"
    assert results["speedup_exact"] == pytest.approx(16.0 / 4.0)  # the reference's 16 s, not our 20 s
    assert results["memory_ratio_exact"] == pytest.approx(2e9 / 8e9)
    assert results["ratios_vs_unoptimized"]["reference"]["train_speedup"] == pytest.approx(20.0 / 16.0)
    assert results["targets"]["exact train step >= 3x faster"] == {"value": 4.0, "met": True}
    report = to_markdown(results)
    assert report.startswith("# Speed benchmark: the reference code vs unoptimised")
    assert "| train speed-up vs reference | eval speed-up vs reference | peak RSS vs reference |" in report
    assert "| reference | 16.00 | 8.00 | 7.45 | 1.00x | 1.00x | 1.00x |" in report
    assert "| reference-bf16 | 8.00 |" in report and "| exact | 4.00 | 2.00 | 1.86 | 4.00x | 4.00x | 0.25x |" in report
    assert "Against our unoptimised path: reference 1.25x train" in report
    assert "its sequences are 278 positions" in report and "shim one; shim two" in report
    assert "Speed-ups and memory ratios below are against the reference code (float32)." in report


def test_without_the_reference_the_report_says_its_ratios_are_against_our_unoptimised_path():
    results = fake_results(reference=False)
    assert results["baseline"] == "unoptimized" and results["speedup_exact"] == pytest.approx(5.0)
    report = to_markdown(results)
    assert "against our unoptimised path (no reference checkout given" in report
    assert "| train speed-up vs unoptimised |" in report and "| reference |" not in report
    assert "| unoptimized | 20.00 | 10.00 | 5.59 | 1.00x | 1.00x | 1.00x |" in report


# -- the worker, on the stand-in checkout -----------------------------------------------------------

@pytest.mark.slow  # two worker processes, each building a SmolLM2-shaped layer: ~20 s on a quiet 2-core CPU
def test_the_reference_worker_times_a_checkout_with_the_benchmark_backbone(tmp_path):
    from timellm_core.benchmarking.speed import BenchSettings, _in_subprocess

    folder = write_stand_in_checkout(tmp_path / "Time-LLM")
    settings = BenchSettings(batch_size=2, channels=2, seq_len=32, pred_len=8, d_model=8, d_ff=16, llm_layers=1,
                             warmup=0, reference_dir=str(folder))
    for path in ("reference", "reference-bf16"):
        result = _in_subprocess("path", settings, f"{path}:2", REFERENCE_WORKER)
        assert len(result["train_step_all_s"]) == 2 and len(result["eval_step_all_s"]) == 2
        assert result["supplied"] == ["LlamaConfig", "LlamaModel", "LlamaTokenizer"]
        assert result["configs"]["llm_layers"] == 1 and result["configs"]["prompt_domain"] == 1
        assert result["configs"]["seq_len"] == 32 and result["configs"]["llm_dim"] == 576
        assert result["patch_count"] == 4 and result["sequence_length"] > result["patch_count"]
        assert result["peak_rss_bytes"] > 0 and json.dumps(result)
