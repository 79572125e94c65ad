"""Home: what Time-LLM is, the pipeline with live tensor shapes, and what is ready on this machine."""

from __future__ import annotations

import streamlit as st

from explorer_ui import charts
from explorer_ui import jobs
from explorer_ui import shared
from explorer_ui.readiness import render_readiness
from timellm_core.backbones import resolve_backbone_spec
from timellm_core.errors import TimeLLMError
from timellm_core.inspection import pipeline_stages

st.title("Time-LLM explorer")
st.markdown(
    "**Time-LLM** (Jin et al., ICLR 2024) forecasts time series with a language model whose weights "
    "never change. Small trainable layers *reprogram* the series into the model's word space: the "
    "input is normalised, cut into overlapping patches, and each patch attends to a few **text "
    "prototypes** (learned mixtures of the LLM's word embeddings). A **prompt** describing the "
    "dataset, the task and the input's statistics goes first; the frozen LLM reads prompt plus "
    "patches, and a linear head turns its last hidden states into the forecast.")
st.markdown(
    "Use the pages in order: **Data** (look at the series), **Backbone** (pick and load an LLM), "
    "**Train** (fit the reprogramming layers, watch the loss), then look inside with **Patches**, "
    "**Prompt & reprogramming**, **Inside the LLM** (does it read the prompt?) and **Forecast**. Honest note: "
    "Tan et al. (NeurIPS 2024) found that removing the LLM often does not hurt; the Train page lets you run that "
    "ablation (`llm_mode=none`).")
st.markdown("Step by step, with shapes, data flow and parameter counts: `docs/how-it-works.md` in the project folder.")

st.subheader("The pipeline, with the shapes of your current choices")
chosen = shared.selection()
run = jobs.find_run(chosen.run_id)
config = run.config if run is not None and run.config is not None else shared.working_config()
channels = shared.channel_count(config) if chosen.dataset else None
hidden_size = vocab_size = None
if chosen.backbone:
    try:
        spec = resolve_backbone_spec(chosen.backbone)
        hidden_size, vocab_size = spec.hidden_size, spec.vocab_size
    except TimeLLMError:  # a missing folder only means the diagram stays symbolic
        pass
stages = pipeline_stages(config, channels, hidden_size=hidden_size, vocab_size=vocab_size)
st.html(charts.pipeline_html(stages))
m = config.model
st.caption(
    f"B = batch {config.training.batch_size}, T = seq_len {m.seq_len}, N = channels "
    f"{channels if channels else '(choose a dataset)'}, P = {m.patch_count} patches "
    f"(patch_len {m.patch_len}, stride {m.stride}), S = {m.num_prototypes} prototypes, H = {m.n_heads} heads, "
    f"D = LLM hidden size {hidden_size or '(choose a backbone)'}, V = vocabulary {vocab_size or '?'}, "
    "L = prompt tokens (depends on the tokenizer and the statistics). Blue boxes are trained; grey boxes are "
    "frozen. " + (f"Sizes of run {run.run_id}." if run is not None else "Change the sizes on the Train page."))

st.subheader("Ready on this machine")
render_readiness()
