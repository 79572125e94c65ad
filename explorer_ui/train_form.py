"""The Train page's settings: presets and a form for the main hyper-parameters, with sensible bounds."""

from __future__ import annotations

from typing import Any

import streamlit as st
import torch

from explorer_ui import shared
from timellm_core.backbones import CATALOGUE, is_available, resolve_backbone_spec
from timellm_core.config import LLM_MODES, LR_SCHEDULES, PRESETS, PROMPT_STYLES, RunConfig, preset
from timellm_core.errors import TimeLLMError
from timellm_core.llm.precision import choose_fast_precision
from timellm_core.preset_expectations import expectation_line, expectation_short

PREFIX = "train_form_"
PRESET_KEY = "train_preset"


def _apply_preset() -> None:
    config = preset(st.session_state[PRESET_KEY])
    shared.set_working_config(config)
    spec = CATALOGUE.get(config.backbone.name)
    if spec is not None and is_available(spec):  # the preset's backbone when it is here (qwen-cpu: Qwen)
        st.session_state[shared.BACKBONE] = spec.name
    show_in_form(shared.working_config())


def form_values(config: RunConfig, hidden_size: int | None, max_layers: int | None) -> dict[str, Any]:
    """Each form widget's session-state key and its value for ``config``, within the form's bounds."""
    m, t = config.model, config.training
    values = {
        "seq_len": int(m.seq_len), "pred_len": int(m.pred_len), "patch_len": int(m.patch_len),
        "stride": int(m.stride), "d_model": int(m.d_model),
        "d_ff": min(int(m.d_ff), int(hidden_size) if hidden_size else 4096), "n_heads": int(m.n_heads),
        "num_prototypes": int(m.num_prototypes),
        "llm_layers": min(int(config.backbone.llm_layers), int(max_layers) if max_layers else 64),
        "llm_mode": m.llm_mode, "prompt_style": m.prompt_style, "features": config.data.features,
        "target": config.data.target,
        "epochs": int(t.train_epochs), "batch_size": int(t.batch_size), "learning_rate": float(t.learning_rate),
        "lradj": t.lradj, "patience": int(t.patience), "max_train": int(t.max_train_windows or 0),
        "max_eval": int(t.max_eval_windows or 0), "seed": int(t.seed), "test_each_epoch": bool(t.test_each_epoch),
        "fast": bool(m.fast)}
    return {PREFIX + name: value for name, value in values.items()}


def show_in_form(config: RunConfig) -> None:
    """Set the form's widgets to ``config`` (call from a callback, before the form is drawn).

    Deleting their state is not enough: a browser keeps showing (and submits) a mounted widget's
    own value until the server sets it; the sidebar's backbone gives the bounds of d_ff and llm_layers.
    """
    try:
        spec = resolve_backbone_spec(st.session_state.get(shared.BACKBONE) or config.backbone.name)
        hidden_size, max_layers = spec.hidden_size, spec.num_layers
    except TimeLLMError:
        hidden_size = max_layers = None
    st.session_state.update(form_values(config, hidden_size, max_layers))


def render_presets() -> None:
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    with left:
        st.selectbox("Preset", list(PRESETS), key=PRESET_KEY,
                     format_func=lambda name: name + (f" ({expectation_short(name)})" if expectation_short(name) else ""),
                     help="cpu-quick: a few minutes on a laptop CPU (ETTh1 96 -> 96, 2 LLM layers, 480 windows, 3 "
                          "epochs). classroom: the same with 960 windows, under 10 minutes, near DLinear's test MSE. "
                          "qwen-cpu: real Qwen 2.5 0.5B in 4-bit NF4 on one ETTh1 channel (HULL) 24 steps ahead, a "
                          "few minutes on a CPU "
                          "(fetch qwen2.5-0.5b on the Backbone page first). "
                          "paper-etth1-96: the reference's ETTh1 script (T=512, LLaMA-7B, 100 epochs); "
                          "paper-etth1-96-smollm2: the same settings on SmolLM2-135M (all 30 layers). A finished "
                          "ETTh1 run at horizon 96 shows the paper's published MSE / MAE next to its own.")
    with right:
        st.button("Load preset", on_click=_apply_preset, key="train_load_preset", width="stretch")
    chosen = st.session_state.get(PRESET_KEY) or next(iter(PRESETS))
    st.caption(f"**{chosen}**: {expectation_line(chosen)}. A preset fills the settings below and selects its "
               "backbone when that is on this machine; the dataset stays the sidebar's choice (the figures are "
               "for ETTh1).")


def render_form(config: RunConfig, hidden_size: int | None, max_layers: int | None, m4: bool,
                start_label: str, disabled: bool, channels: list[str] | None = None) -> RunConfig | None:
    """The settings form; returns the new RunConfig when the start button was pressed, else None.

    ``channels``: the dataset's channel names, the choices of the target (None: M4, or not known)."""
    model, training, backbone = config.model, config.training, config.backbone
    target_index = _target_index(config, channels)
    with st.form("train_form", border=True):
        st.markdown("**Model**")
        c = st.columns(4)
        seq_len = c[0].number_input("seq_len (T)", 8, 2048, int(model.seq_len), step=8, key=PREFIX + "seq_len",
                                    disabled=m4, help="Input steps. M4 fixes it to two horizons.")
        pred_len = c[1].number_input("pred_len", 1, 1024, int(model.pred_len), key=PREFIX + "pred_len",
                                     disabled=m4, help="Forecast steps. M4 fixes it to the horizon.")
        patch_len = c[2].number_input("patch_len", 1, 512, int(model.patch_len), key=PREFIX + "patch_len")
        stride = c[3].number_input("stride", 1, 512, int(model.stride), key=PREFIX + "stride",
                                   help="Smaller than patch_len: patches overlap.")
        c = st.columns(4)
        d_model = c[0].number_input("d_model", 4, 512, int(model.d_model), key=PREFIX + "d_model",
                                    help="Patch embedding width.")
        d_ff_max = int(hidden_size) if hidden_size else 4096
        d_ff = c[1].number_input("d_ff", 1, d_ff_max, min(int(model.d_ff), d_ff_max), key=PREFIX + "d_ff",
                                 help=f"Reprogramming head size and LLM features the head reads (at most the "
                                      f"backbone's hidden size{f', {hidden_size}' if hidden_size else ''}).")
        n_heads = c[2].number_input("n_heads (H)", 1, 32, int(model.n_heads), key=PREFIX + "n_heads")
        prototypes = c[3].number_input("prototypes (S)", 1, 8192, int(model.num_prototypes),
                                       key=PREFIX + "num_prototypes")
        c = st.columns(5)
        layer_max = int(max_layers) if max_layers else 64
        llm_layers = c[0].number_input("llm_layers", 1, layer_max, min(int(backbone.llm_layers), layer_max),
                                       key=PREFIX + "llm_layers", help="Transformer layers of the LLM kept.")
        llm_mode = c[1].selectbox("llm_mode", LLM_MODES, index=LLM_MODES.index(model.llm_mode),
                                  key=PREFIX + "llm_mode",
                                  help="frozen: the paper. none / attention / transformer: the ablations of "
                                       "Tan et al. (2024), without the LLM.")
        prompt_style = c[2].selectbox("prompt_style", PROMPT_STYLES, index=PROMPT_STYLES.index(model.prompt_style),
                                      key=PREFIX + "prompt_style",
                                      help="reference: the authors' template, character for character.")
        features = c[3].selectbox("features", ("M", "S", "MS"), index=("M", "S", "MS").index(config.data.features),
                                  key=PREFIX + "features", disabled=m4,
                                  help="M: all channels in and out; S: the target only; MS: all in, target out.")
        target = c[4].selectbox("target", channels or [config.data.target], index=target_index,
                                key=PREFIX + "target", disabled=m4 or not channels,
                                help="The channel forecast with features S (from itself alone) and MS (from every "
                                     "channel); M forecasts every channel.")
        st.markdown("**Training**")
        c = st.columns(4)
        epochs = c[0].number_input("train_epochs", 1, 200, int(training.train_epochs), key=PREFIX + "epochs")
        batch = c[1].number_input("batch_size", 1, 256, int(training.batch_size), key=PREFIX + "batch_size")
        rate = c[2].number_input("learning_rate", 1e-6, 1.0, float(training.learning_rate), format="%.5f",
                                 step=0.0005, key=PREFIX + "learning_rate")
        lradj = c[3].selectbox("lradj", LR_SCHEDULES, index=LR_SCHEDULES.index(training.lradj), key=PREFIX + "lradj",
                               help="type1 halves the rate each epoch; TST one-cycle per batch; COS cosine.")
        c = st.columns(4)
        patience = c[0].number_input("patience", 1, 50, int(training.patience), key=PREFIX + "patience",
                                     help="Early stopping: epochs without a better validation MSE.")
        max_train = c[1].number_input("max train windows (0 = all)", 0, 1_000_000,
                                      int(training.max_train_windows or 0), step=50, key=PREFIX + "max_train",
                                      help="A seeded random subset per run: quick demos on a CPU.")
        max_eval = c[2].number_input("max eval windows (0 = all)", 0, 1_000_000, int(training.max_eval_windows or 0),
                                     step=50, key=PREFIX + "max_eval",
                                     help="A seeded subset for validation and test. 0 reports metrics over every "
                                          "test window, as published tables should.")
        seed = c[3].number_input("seed", 0, 2**31 - 1, int(training.seed), key=PREFIX + "seed")
        c = st.columns(2)
        test_each_epoch = c[0].checkbox("Test every epoch", value=bool(training.test_each_epoch),
                                        key=PREFIX + "test_each_epoch",
                                        help="Draws the test MSE per epoch next to train and validation (as the "
                                             "reference does). Off saves time; the final test on the best weights "
                                             "always runs.")
        fast = c[1].checkbox("Fast mode", value=bool(model.fast), key=PREFIX + "fast",
                             help="Compact prompt numbers (prompt_style is then compact), no MLP recomputation "
                                  "and, where this machine multiplies bfloat16 faster than float32, bf16 compute "
                                  f"(here: {fast_precision_here()}). The forecast changes slightly. Off: the "
                                  "exact path, the same numbers as the reference computation.")
        pressed = st.form_submit_button(start_label, type="primary", disabled=disabled)
    if not pressed:
        return None
    new = config.copy()
    m, t = new.model, new.training
    if not m4:
        m.seq_len, m.pred_len, new.data.features = int(seq_len), int(pred_len), str(features)
        if channels:
            new.data.target = str(target)
    m.patch_len, m.stride, m.d_model, m.d_ff = int(patch_len), int(stride), int(d_model), int(d_ff)
    m.n_heads, m.num_prototypes, m.llm_mode, m.prompt_style = int(n_heads), int(prototypes), llm_mode, prompt_style
    new.backbone.llm_layers = int(llm_layers)
    t.train_epochs, t.batch_size, t.learning_rate, t.lradj = int(epochs), int(batch), float(rate), lradj
    t.patience, t.seed = int(patience), int(seed)
    t.test_each_epoch = bool(test_each_epoch)
    m.fast = bool(fast)
    t.max_train_windows = int(max_train) or None
    t.max_eval_windows = int(max_eval) or None
    return new


def _target_index(config: RunConfig, channels: list[str] | None) -> int:
    """The target list's starting choice; a remembered choice outside this dataset's columns is dropped
    first (a selectbox cannot show a value outside its options)."""
    options = channels or [config.data.target]
    if st.session_state.get(PREFIX + "target") not in options:
        st.session_state.pop(PREFIX + "target", None)
    return options.index(shared.target_in(config, channels)) if channels else 0


def setting_of(config: RunConfig) -> str:
    """Runs are comparable when they forecast the same data the same way: dataset, features (with the
    target for S and MS: another channel is another series), lengths."""
    data = config.data.name + (f" ({config.data.seasonal_patterns})" if config.data.seasonal_patterns else "")
    one_channel = config.data.features in ("S", "MS") and config.data.name.lower() != "m4"  # M4: series, not channels
    features = config.data.features + (f" {config.data.target}" if one_channel else "")
    return f"{data} · features {features} · {config.model.seq_len}→{config.model.pred_len}"


def settings_summary(config: RunConfig) -> dict[str, Any]:
    """The main settings of a config as one flat row (for the run table)."""
    m, t = config.model, config.training
    return {"seq_len": m.seq_len, "pred_len": m.pred_len, "llm_mode": m.llm_mode,
            "llm_layers": config.backbone.llm_layers, "d_model": m.d_model, "d_ff": m.d_ff, "S": m.num_prototypes,
            "epochs": t.train_epochs, "lr": t.learning_rate, "fast": bool(m.fast)}


@st.cache_resource(show_spinner=False)
def fast_precision_here() -> str:
    """The fast path's precision on this server's device, and why (a probe, measured once per machine)."""
    try:
        precision = choose_fast_precision("cuda" if torch.cuda.is_available() else "cpu")
    except TimeLLMError as error:  # e.g. a wrong TIMELLM_FAST_PRECISION: say so, keep the form
        return f"unknown ({error})"
    return f"{precision.name}, {precision.reason}"
