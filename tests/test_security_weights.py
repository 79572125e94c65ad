"""Weights load without running code: safetensors or GGUF only, and no remote code unless asked for."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import torch

from timellm_core.backbones import load_backbone, save_tiny_backbone
from timellm_core.cli import main
from timellm_core.config import BackboneConfig
from timellm_core.errors import BackboneError
from timellm_core.safety import check_weight_file, pickle_weight_files

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCANNED = [PROJECT_ROOT / "timellm_core", PROJECT_ROOT / "pages", PROJECT_ROOT / "explorer_ui", PROJECT_ROOT / "app.py"]


def _python_files() -> list[Path]:
    files: list[Path] = []
    for root in SCANNED:
        files.extend([root] if root.is_file() else sorted(root.rglob("*.py")))
    return files


def _call_name(node: ast.Call) -> str:
    parts = []
    target = node.func
    while isinstance(target, ast.Attribute):
        parts.append(target.attr)
        target = target.value
    if isinstance(target, ast.Name):
        parts.append(target.id)
    return ".".join(reversed(parts))


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in node.keywords if kw.arg == name), None)


def _unsafe_calls(path: Path) -> list[str]:
    """torch.load without weights_only=True, any pickle/dill/joblib/marshal load, np.load(allow_pickle=True)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    # `from torch import load [as x]` makes a bare call a torch.load
    torch_loads = {alias.asname or alias.name for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) and node.module == "torch"
                   for alias in node.names if alias.name == "load"}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(m.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "marshal", "shelve") for m in modules):
                found.append(f"{path}:{node.lineno} imports {', '.join(modules)}")
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        where = f"{path}:{node.lineno} {name}("
        if name.endswith("torch.load") or name in torch_loads:
            weights_only = _keyword(node, "weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                found.append(where + " without weights_only=True")
        if name.split(".")[-1] in ("load", "loads") and name.split(".")[0] in ("pickle", "dill", "joblib", "marshal"):
            found.append(where)
        if name.endswith(("np.load", "numpy.load")):
            allow = _keyword(node, "allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                found.append(where + " with allow_pickle")
        if name.endswith("pd.read_pickle") or name.endswith("torch.jit.load"):
            found.append(where)
    return found


def test_no_pickle_based_loading_anywhere_in_the_package_or_app():
    files = _python_files()
    assert len(files) > 20  # the scan really covers the package
    problems = [problem for path in files for problem in _unsafe_calls(path)]
    assert problems == [], "pickle-based loading found:\n" + "\n".join(problems)


def test_the_scan_catches_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import torch, pickle\nimport numpy as np\nfrom torch import load as tl\n"
                      "a = torch.load('x.bin')\nb = torch.load('x.bin', weights_only=False)\n"
                      "c = torch.load('x.bin', weights_only=True)\nd = pickle.loads(b'')\n"
                      "e = np.load('x.npz', allow_pickle=True)\nf = np.load('x.npz')\ng = tl('y.pt')\n")
    problems = _unsafe_calls(sample)
    # import pickle, three torch.load (one aliased), pickle.loads, allow_pickle
    assert len(problems) == 6, problems
    assert not any(":6 " in p or ":9 " in p for p in problems)


def test_weight_file_rules():
    assert check_weight_file("m/model.safetensors").name == "model.safetensors"
    assert check_weight_file("m/SmolLM2.Q4_1.gguf").suffix == ".gguf"
    for name in ("pytorch_model.bin", "model.pt", "weights.pth", "last.ckpt", "state.pkl"):
        with pytest.raises(BackboneError) as caught:
            check_weight_file(name)
        message = str(caught.value)
        assert "pickle" in message and "can run code" in message and "safetensors" in message


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-llama")
    save_tiny_backbone("tiny-llama", folder)
    return folder


def test_a_folder_with_only_pickle_weights_is_refused_and_never_unpickled(tiny_folder, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    folder = tmp_path / "bin-only"
    shutil.copytree(tiny_folder, folder)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    assert pickle_weight_files(folder) == ["pytorch_model.bin"]

    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))
    with pytest.raises(BackboneError) as caught:
        load_backbone(BackboneConfig(name=str(folder), llm_layers=2), device="cpu")
    message = str(caught.value)
    assert "pytorch_model.bin" in message and "pickle" in message and "safetensors" in message
    assert calls == []  # torch.load was never reached


def _spy_from_pretrained(monkeypatch) -> list[tuple[str, dict]]:
    """Record the keyword arguments every from_pretrained call receives (config, tokenizer, model)."""
    import transformers

    seen: list[tuple[str, dict]] = []

    def wrap(owner: type, label: str) -> None:
        real = owner.from_pretrained.__func__

        def spy(cls, *args, **kwargs):
            seen.append((label, dict(kwargs)))
            return real(cls, *args, **kwargs)

        monkeypatch.setattr(owner, "from_pretrained", classmethod(spy))

    wrap(transformers.AutoConfig, "config")
    wrap(transformers.AutoTokenizer, "tokenizer")
    wrap(transformers.LlamaModel, "model")
    return seen


def test_trust_remote_code_is_off_unless_asked(tiny_folder, monkeypatch):
    seen = _spy_from_pretrained(monkeypatch)
    backbone = load_backbone(BackboneConfig(name=str(tiny_folder), llm_layers=2), device="cpu")
    assert backbone.num_layers == 2
    labels = {label for label, _ in seen}
    assert {"config", "tokenizer", "model"} <= labels, seen
    for label, kwargs in seen:
        assert kwargs.get("trust_remote_code") is False, (label, kwargs)
        assert kwargs.get("local_files_only") is True, (label, kwargs)
    model_kwargs = next(kwargs for label, kwargs in seen if label == "model")
    assert model_kwargs.get("use_safetensors") is True


def test_trust_remote_code_reaches_from_pretrained_only_when_asked(tiny_folder, monkeypatch):
    import transformers

    seen: list[dict] = []
    real = transformers.AutoConfig.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.append(dict(kwargs))
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", classmethod(spy))
    try:
        load_backbone(BackboneConfig(name=str(tiny_folder), llm_layers=1, trust_remote_code=True), device="cpu")
    except BackboneError:
        pass  # AutoModel with remote code allowed may still load or refuse; only the flag matters here
    assert seen and seen[0].get("trust_remote_code") is True


def test_the_cli_never_turns_remote_code_on_by_itself(tiny_folder, monkeypatch, capsys):
    seen = _spy_from_pretrained(monkeypatch)
    assert main(["backbones", "info", str(tiny_folder), "--llm_layers", "1", "--device", "cpu", "--json"]) == 0
    assert seen and all(kwargs.get("trust_remote_code") is False for _, kwargs in seen)
    # the training flags have no way to turn it on: no such flag exists
    from timellm_core.training.reference_flags import REFERENCE_FLAGS

    assert "trust_remote_code" not in {flag.name for flag in REFERENCE_FLAGS}
