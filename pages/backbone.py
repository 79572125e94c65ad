"""Backbone: the catalogue, fetching, loading (cached per settings), measured size, 4-bit and memory plan."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer_ui import shared
from explorer_ui.memory import render_gpu_plan, render_memory_plan
from explorer_ui.readiness import fetch_backbone_with_progress
from timellm_core.backbones import is_available, list_backbones, resolve_backbone_spec
from timellm_core.backbones.quantization import parameter_count

st.title("Backbone")

st.markdown("The backbone is the frozen language model in the middle of Time-LLM. Only the layers around it "
            "train, so a small model is enough to learn how the method works; the paper used LLaMA-7B.")

specs = list_backbones()
catalogue = pd.DataFrame([{
    "backbone": spec.name, "family": spec.family,
    "available": "tiny (built on the fly)" if spec.tiny else ("yes" if is_available(spec) else "no"),
    "hidden": spec.hidden_size, "layers": spec.num_layers, "vocabulary": spec.vocab_size,
    "parameters": f"{spec.params / 1e6:,.1f} M" if spec.params else "",
    "about": spec.description} for spec in specs])
st.dataframe(catalogue, hide_index=True, width="stretch", key="backbone_catalogue")

chosen = shared.selection()
if chosen.backbone is None:
    shared.need("a backbone", "in the sidebar; tiny ones load instantly")

with shared.core_errors():
    spec = resolve_backbone_spec(chosen.backbone)
st.subheader(spec.name)
st.caption(spec.description)

missing = not spec.tiny and not is_available(spec)
if missing:  # the memory plan below needs only the catalogue's sizes: plan before downloading
    st.warning(f"{spec.name} is not on this machine yet.")
    if st.button(f"Fetch {spec.name}", key="backbone_fetch", type="primary"):
        if fetch_backbone_with_progress(spec.name):
            st.rerun()
    if spec.hidden_size is None:
        st.stop()  # its sizes are known only once it is here

config = shared.working_config()
max_layers = int(spec.num_layers or 48)
left, right = st.columns(2)
with left:
    layers = st.number_input("Layers to keep (llm_layers)", min_value=1, max_value=max_layers,
                             value=min(int(config.backbone.llm_layers), max_layers), step=1, key="backbone_layers",
                             help="Time-LLM keeps only the first K transformer layers of the LLM.")
with right:
    four_bit = st.toggle("Load in 4-bit (NF4)", value=bool(config.backbone.load_in_4bit), key="backbone_4bit")
    st.caption("NF4 stores each weight in 4 bits on a grid of 16 values spaced like a normal distribution "
               "(weights are roughly normal), with one scale per block of 64 weights. The frozen LLM "
               "takes about a quarter of its 16-bit memory; outputs change slightly. Needs bitsandbytes.")
if int(layers) != config.backbone.llm_layers or bool(four_bit) != config.backbone.load_in_4bit:
    config.backbone.llm_layers, config.backbone.load_in_4bit = int(layers), bool(four_bit)
    shared.set_working_config(config)

st.markdown("**Does it fit on a 6 GB GPU?**")
render_memory_plan(config, spec, shared.channel_count(config))
render_gpu_plan(config, spec, shared.channel_count(config))
if missing:
    st.stop()

if st.button(f"Load {spec.name} ({int(layers)} layers{', 4-bit' if four_bit else ''})", key="backbone_load",
             type="primary"):
    st.session_state["backbone_loaded"] = (spec.name, int(layers), bool(four_bit))
if st.session_state.get("backbone_loaded") == (spec.name, int(layers), bool(four_bit)):
    backbone = shared.load_backbone(config.backbone)
    st.success(f"Loaded {spec.name}: frozen, in eval mode, on {backbone.device}.")
    facts = pd.DataFrame([{
        "family": backbone.family, "hidden size (D)": backbone.hidden_size,
        "layers kept": backbone.num_layers, "of": spec.num_layers, "vocabulary (V)": backbone.vocab_size,
        # A packed 4-bit matrix stores two weights a byte: count weights by their original shape.
        "parameters kept": f"{parameter_count(backbone.model) / 1e6:,.2f} M",
        "measured memory": f"{backbone.memory_bytes / 2**20:,.1f} MiB",
        "4-bit layers": backbone.quantized_linear_layers, "causal": backbone.causal}])
    st.dataframe(facts, hide_index=True, width="stretch", key="backbone_facts")
    st.caption("Measured memory counts the kept layers' parameters and buffers as stored (4-bit weights at "
               "half a byte each). Loaded backbones are shared by every page and session of this server.")
    for note in backbone.notes:
        st.info(note)
