"""The reference implementation from a checkout the user gives (``bench --reference DIR``).

The reference is the authors' public code (github.com/KimMeen/Time-LLM); nothing of it is part
of this project. This module finds ``DIR/models/TimeLLM.py``, imports it the way the reference's
own ``run_main.py`` does (the checkout's folder first on ``sys.path``, ``models.TimeLLM``), and
replaces, in that module's namespace only, the Hugging Face classes whose ``from_pretrained`` it
calls, so that it gets the benchmark's backbone and tokenizer instead of downloading LLaMA-7B.
The timing itself is in ``reference_speed``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from timellm_core.errors import ConfigError

REFERENCE_PATHS = ("reference", "reference-bf16")  # fp32, and bf16 autocast as its --use_amp would
REFERENCE_WORKER = "timellm_core.benchmarking.reference_speed"  # the module run for a reference path
MODEL_FILE = Path("models") / "TimeLLM.py"
REFERENCE_URL = "https://github.com/KimMeen/Time-LLM"

# The names under which models/TimeLLM.py may hold the classes it loads LLaMA with (for
# ``--llm_model LLAMA``): the 2024 code imports LlamaConfig, LlamaModel and LlamaTokenizer.
CONFIG_ENTRY_POINTS = ("LlamaConfig", "AutoConfig")
MODEL_ENTRY_POINTS = ("LlamaModel", "AutoModel")
TOKENIZER_ENTRY_POINTS = ("LlamaTokenizer", "LlamaTokenizerFast", "AutoTokenizer")

# run_main.py's argparse defaults for what models/TimeLLM.py and its training loop read.
RUN_MAIN_DEFAULTS: dict[str, Any] = dict(
    task_name="long_term_forecast", features="M", target="OT", freq="h", embed="timeF",
    seq_len=96, label_len=48, pred_len=96, enc_in=7, dec_in=7, c_out=7, d_model=16, n_heads=8,
    e_layers=2, d_layers=1, d_ff=32, moving_avg=25, factor=1, dropout=0.1, activation="gelu",
    output_attention=False, patch_len=16, stride=8, prompt_domain=0, llm_model="LLAMA", llm_dim=4096,
    llm_layers=6, batch_size=32, eval_batch_size=8, learning_rate=0.0001, loss="MSE", lradj="type1",
    pct_start=0.2, use_amp=False, percent=100, seed=2021,
)


def check_reference_checkout(directory: str | Path) -> Path:
    """The checkout's folder, resolved; a ``ConfigError`` saying what is missing when it is not one."""
    folder = Path(directory).expanduser()
    hint = (f"Give the folder of a checkout of the reference implementation ({REFERENCE_URL}), the one that "
            f"holds {MODEL_FILE.as_posix()} and layers/.")
    if not folder.is_dir():
        raise ConfigError(f"--reference {directory}: there is no such folder. {hint}")
    model_file = folder / MODEL_FILE
    if not model_file.is_file():
        raise ConfigError(f"--reference {directory}: {MODEL_FILE.as_posix()} is not in this folder. {hint}")
    try:
        text = model_file.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise ConfigError(f"--reference {directory}: {MODEL_FILE.as_posix()} cannot be read ({error}).") from error
    if "class Model" not in text:
        raise ConfigError(f"--reference {directory}: {MODEL_FILE.as_posix()} defines no Model class, so it is not "
                          f"Time-LLM's model file. {hint}")
    return folder.resolve()


def load_reference_model_module(folder: Path) -> ModuleType:
    """Import ``folder/models/TimeLLM.py`` as ``models.TimeLLM``, the checkout's folder first on sys.path.

    Meant for a process of its own (the benchmark's worker): it leaves the folder on sys.path and
    the reference's ``models`` and ``layers`` packages imported.
    """
    for name in [name for name in sys.modules if name.split(".")[0] in ("models", "layers")]:
        del sys.modules[name]  # another folder's packages of the same names
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module("models.TimeLLM")
    except Exception as error:  # an ImportError, or an error the 2024 code meets with today's libraries
        raise ConfigError(f"The reference's {MODEL_FILE.as_posix()} in {folder} could not be imported: "
                          f"{type(error).__name__}: {error}") from error
    if not isinstance(getattr(module, "Model", None), type):
        raise ConfigError(f"The reference's {MODEL_FILE.as_posix()} in {folder} has no Model class.")
    return module


class PretrainedSupplier:
    """Stands in for a Hugging Face class in the reference's module: ``from_pretrained`` calls ``make``
    (nothing is downloaded or read from the hub); every other attribute is the original class's."""

    def __init__(self, original: Any, make: Callable[..., Any]) -> None:
        self._original = original
        self._make = make
        self.calls: list[tuple[tuple, dict]] = []  # what the reference asked for (tests read it)

    def from_pretrained(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        return self._make(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def supply_pretrained(module: ModuleType, make_config: Callable[..., Any], make_model: Callable[..., Any],
                      make_tokenizer: Callable[..., Any]) -> dict[str, PretrainedSupplier]:
    """Replace the LLaMA loading classes the module holds by suppliers; name -> supplier.

    Only the module's own names change (``module.LlamaModel = ...``): transformers itself, and every
    other user of it in the process, is untouched. A module that holds no model class to replace
    is not one whose backbone this benchmark can supply: a ``ConfigError``.
    """
    replaced = {}
    for names, make in ((CONFIG_ENTRY_POINTS, make_config), (MODEL_ENTRY_POINTS, make_model),
                        (TOKENIZER_ENTRY_POINTS, make_tokenizer)):
        for name in names:
            if hasattr(module, name):
                replaced[name] = PretrainedSupplier(getattr(module, name), make)
                setattr(module, name, replaced[name])
    if not any(name in replaced for name in MODEL_ENTRY_POINTS):
        raise ConfigError(f"The reference's {MODEL_FILE.as_posix()} loads LLaMA with none of "
                          f"{', '.join(MODEL_ENTRY_POINTS)}, so the benchmark cannot give it its backbone.")
    return replaced


def reference_configs(**settings: Any) -> argparse.Namespace:
    """The ``configs`` namespace the reference's Model reads: run_main.py's defaults, then ``settings``."""
    unknown = sorted(set(settings) - set(RUN_MAIN_DEFAULTS) - {"content"})
    if unknown:
        raise ValueError(f"not run_main.py flags: {', '.join(unknown)}")
    return argparse.Namespace(**{**RUN_MAIN_DEFAULTS, **settings})
