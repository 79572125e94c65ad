"""Inside the LLM: the frozen LLM's attention from the patch positions over the prompt and the patches."""

from __future__ import annotations

import streamlit as st

from explorer_ui import llm_inside as inside_ui
from explorer_ui.model import inspected, untrained_counterpart
from explorer_ui.window import pick_window
from timellm_core.llm_attention import PATCHES, group_shares, layer_summary, reading

st.title("Inside the LLM")
st.markdown("The frozen LLM reads one sequence per channel: the **prompt's tokens**, then the **reprogrammed "
            "patches**. Its forecast is read from the patch positions only, so what matters is where *they* look. "
            "Each layer's attention heads give every patch position (a query) weights over the earlier positions "
            "(the keys) that sum to 1. Here they are grouped by prompt part: the dataset description, the task, and "
            "each input statistic (min, max, median, trend, top lags).")
target = inspected()
config = target.config
if config.model.llm_mode != "frozen":
    st.info(f"llm_mode is '{config.model.llm_mode}': this ablation replaces the LLM with "
            + ("nothing" if config.model.llm_mode == "none" else f"one trainable {config.model.llm_mode} layer")
            + ", so there is no LLM to look inside. Choose a run trained with the frozen LLM (the paper's setting).")
    st.stop()
if target.trained:
    st.success(f"Trained weights of run {target.run_id}, compared below with the same model untrained.")
else:
    st.info("This is an **untrained** model: the LLM is the real frozen one, but the patches reaching it come from "
            "randomly initialised reprogramming layers. Choose a trained run in the sidebar to compare.")
choice = pick_window(target, key="llm_inside")
maps, cached = inside_ui.attention_maps(target.model, target.model_key, target, choice)

computed = [] if cached else [maps.seconds]  # seconds of the maps computed in this script run
summaries = {}
if target.trained:
    untrained_model, untrained_key = untrained_counterpart(target)
    untrained_maps, untrained_cached = inside_ui.attention_maps(untrained_model, untrained_key, target, choice)
    computed += [] if untrained_cached else [untrained_maps.seconds]
    summaries[inside_ui.TRAINED] = layer_summary(maps)
    summaries[inside_ui.UNTRAINED] = layer_summary(untrained_maps)
else:
    summaries[inside_ui.UNTRAINED] = layer_summary(maps)

columns = st.columns(4)
columns[0].metric("Prompt tokens", len(maps.prompt_tokens))
columns[1].metric("Patch positions", maps.patch_count)
columns[2].metric("Layers x heads", f"{maps.layer_count} x {maps.head_count}")
columns[3].metric("Computed in", f"{sum(computed):.2f} s" if computed else "cached",
                  help="The LLM run on this channel with its attention maps (both models when a run is chosen); "
                       "kept for this session per run, window and channel.")

# --- one layer, one head (or their average) --------------------------------------------------------
st.subheader("Where the patch positions look")
left, middle, right = st.columns([1, 1, 2])
layer = left.selectbox("Layer", list(range(maps.layer_count)), index=maps.layer_count - 1,
                       format_func=lambda value: f"layer {value}", key="llm_inside_layer")
heads = ["average of heads"] + [f"head {h}" for h in range(maps.head_count)]
head = middle.selectbox("Head", heads, key="llm_inside_head")
keys = right.radio("Keys", ["each token", "summed per prompt part"], horizontal=True, key="llm_inside_keys")
chosen = maps.attention[layer]  # (heads, P, K)
matrix = chosen.mean(axis=0) if head == heads[0] else chosen[heads.index(head) - 1]  # (P, K)
view = f"layer {layer}, {head}"
if keys == "each token":
    st.plotly_chart(inside_ui.token_heatmap(matrix, maps, f"Attention of each patch position over the sequence "
                                                          f"({view})"), key="llm_inside_tokens")
    st.caption("Columns: the prompt's tokens as the LLM read them (␣ is a space; hover for the part), then the "
               "patches. The coloured band names the prompt part. Zoom in (drag) to read every token.")
else:
    groups, shares = group_shares(maps)  # (layers, heads, P, G)
    picked = shares[layer].mean(axis=0) if head == heads[0] else shares[layer][heads.index(head) - 1]
    st.plotly_chart(inside_ui.group_heatmap(picked, groups, f"Share of each patch position's attention per prompt "
                                                            f"part ({view})"), key="llm_inside_groups")
    st.caption("Each row sums to 1 over the prompt parts and the patches.")
if maps.causal:
    st.caption(f"{maps.backbone} is causal: patch i sees the prompt and patches 0 to i, so the patch-over-patch "
               "block is empty above its diagonal.")
else:
    st.caption(f"{maps.backbone} is bidirectional (BERT-style): every patch position also sees the patches after it.")

# --- per layer: prompt or patches ------------------------------------------------------------------
st.subheader("Does the LLM read the prompt?")
st.plotly_chart(inside_ui.prompt_share_bars(summaries), key="llm_inside_prompt_share")
st.markdown(reading(summaries[inside_ui.UNTRAINED], summaries.get(inside_ui.TRAINED)))
shown = summaries.get(inside_ui.TRAINED, summaries[inside_ui.UNTRAINED])
first = maps.prompt_tokens[0].text if maps.prompt_tokens else ""
st.caption(f"Averaged over heads and patch positions. The first prompt token ('{first}') alone takes "
           f"{shown['first token'].mean():.0%} on average: LLMs often park attention on the first position "
           "(an 'attention sink'), which says little about reading. Shown for "
           f"{choice.label}; run alone, as channels are independent in Time-LLM (a statistic's last printed digit "
           "can differ from the whole window's prompt on the Prompt page by float rounding).")
groups = [column for column in shown.columns if column not in ("layer", "prompt share", "first token")]
name = inside_ui.TRAINED if target.trained else inside_ui.UNTRAINED
st.plotly_chart(inside_ui.group_share_bars(shown, groups, f"Where the attention goes, per layer ({name})"),
                key="llm_inside_group_bars")
with st.expander("The numbers"):
    st.dataframe(shown, hide_index=True, key="llm_inside_table")
    st.caption(f"Shares per layer; the prompt parts and '{PATCHES}' add up to 1.")
