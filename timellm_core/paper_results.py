"""How far a run is from the paper: the published figure for its setting, and what the run does differently.

Time-LLM (Jin et al., ICLR 2024) reports test MSE / MAE in the scaled space over every test window of
the fixed ETT split, after training with LLaMA-7B (all 32 layers) under the reference's script. A run
here is usually much smaller, so next to the published figure we list each setting that differs.
Only figures we are sure of are listed: the ETTh1, horizon 96 entry of the paper's full long-term
forecasting results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from timellm_core.config import RunConfig

PAPER = "Time-LLM (Jin et al., ICLR 2024), full long-term forecasting results"

# The reference's ETTh1 script (scripts/TimeLLM_ETTh1.sh): the settings behind the published ETTh1 rows.
PAPER_ETTH1_SETTINGS: dict[str, Any] = {
    "backbone": "LLaMA-7B",
    "llm_layers": 32,
    "features": "M",
    "seq_len": 512,
    "patch_len / stride": "16 / 8",
    "d_model / d_ff": "32 / 128",
    "n_heads": 8,
    "prototypes": 1000,
    "prompt": "reference (full statistics)",
    "epochs": "up to 100 (early stopping, patience 10)",
    "learning rate": "0.01 (type1)",
    "batch": "24 per GPU, 8 GPUs",
    "train windows": "all",
    "test windows": "all",
    "train data": "100%",
    "LLM": "frozen",
}


@dataclass(frozen=True)
class PublishedResult:
    dataset: str
    pred_len: int
    mse: float
    mae: float
    source: str
    settings: dict[str, Any] = field(default_factory=dict)


PUBLISHED: dict[tuple[str, int], PublishedResult] = {
    ("ETTh1", 96): PublishedResult("ETTh1", 96, mse=0.362, mae=0.392, source=PAPER, settings=PAPER_ETTH1_SETTINGS),
}


@dataclass
class PaperComparison:
    published: PublishedResult
    test_mse: float | None
    test_mae: float | None
    differences: list[dict[str, str]]  # {"setting", "this run", "paper"}, one per setting that differs

    def sentence(self) -> str:
        own = (f"this run {self.test_mse:.3f} / {self.test_mae:.3f}" if self.test_mse is not None
               and self.test_mae is not None else "this run not tested yet")
        differs = ", ".join(row["setting"] for row in self.differences) or "nothing listed"
        return (f"Published ({self.published.dataset}, horizon {self.published.pred_len}): MSE / MAE "
                f"{self.published.mse:.3f} / {self.published.mae:.3f}; {own}. Differs in: {differs}.")


def published_result(config: RunConfig) -> PublishedResult | None:
    """The published figure for a run's dataset and horizon, if the paper has one we list."""
    return PUBLISHED.get((config.data.name, int(config.model.pred_len)))


def _this_run_settings(config: RunConfig, windows_total: dict[str, int] | None) -> dict[str, Any]:
    model, training, backbone = config.model, config.training, config.backbone
    totals = windows_total or {}

    def windows(limit: int | None, split: str) -> str:
        if limit is None or (split in totals and int(limit) >= int(totals[split])):
            return "all"
        return f"{int(limit)} of {totals[split]}" if split in totals else str(int(limit))

    return {
        "backbone": backbone.name,
        "llm_layers": int(backbone.llm_layers),
        "features": config.data.features,
        "seq_len": int(model.seq_len),
        "patch_len / stride": f"{model.patch_len} / {model.stride}",
        "d_model / d_ff": f"{model.d_model} / {model.d_ff}",
        "n_heads": int(model.n_heads),
        "prototypes": int(model.num_prototypes),
        "prompt": "reference (full statistics)" if model.prompt_style == "reference" else f"{model.prompt_style}",
        "epochs": (f"up to {training.train_epochs} (early stopping, patience {training.patience})"
                   if int(training.patience) < int(training.train_epochs) else f"{training.train_epochs}"),
        "learning rate": f"{training.learning_rate:g} ({training.lradj})",
        "batch": f"{training.batch_size}",
        "train windows": windows(training.max_train_windows, "train"),
        "test windows": windows(training.max_eval_windows, "test"),
        "train data": f"{int(config.data.percent)}%",
        "LLM": model.llm_mode,
    }


def compare_with_paper(config: RunConfig, test_metrics: dict[str, Any] | None = None,
                       windows_total: dict[str, int] | None = None) -> PaperComparison | None:
    """The published figure next to the run's own, with every listed setting that differs; None when the
    paper has no figure for the run's dataset and horizon.

    ``windows_total``: windows per split of the full data (the run's ``started`` event), so that a
    sample of them reads "160 of 8161" and every window reads "all".
    """
    published = published_result(config)
    if published is None:
        return None
    ours = _this_run_settings(config, windows_total)
    differences = [{"setting": name, "this run": str(ours[name]), "paper": str(paper)}
                   for name, paper in published.settings.items()
                   if name in ours and str(ours[name]).lower() != str(paper).lower()]
    metrics = test_metrics or {}
    mse, mae = metrics.get("test_mse"), metrics.get("test_mae")
    return PaperComparison(published, None if mse is None else float(mse), None if mae is None else float(mae),
                           differences)
