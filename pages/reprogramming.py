"""Prompt & reprogramming: the exact prompt, and which text prototypes each patch attends to."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from explorer_ui import charts
from explorer_ui.model import inspected, window_trace
from explorer_ui.window import pick_window
from timellm_core.inspection import attention_entropy, patch_top_prototypes, top_prototypes
from timellm_core.model import prototype_words as words

st.title("Prompt & reprogramming")
st.markdown("Two things reach the frozen LLM: a **prompt** (dataset description, task, statistics of this "
            "window) and the **reprogrammed patches**. Reprogramming is cross-attention: each patch embedding "
            "is a query over S **text prototypes**, learned mixtures of the LLM's word embeddings, so every "
            "patch becomes a weighted blend of word-like vectors the LLM can read.")
target = inspected()
model, config = target.model, target.config
if target.trained:
    st.success(f"Trained weights of run {target.run_id}.")
else:
    st.info("This is an **untrained** model: the prompt is exactly what the LLM reads, but the prototypes and "
            "attention weights are random initialisations. Train a run (Train page) and choose it in the sidebar "
            "to see what training learned.")
choice = pick_window(target, key="prompt")
_, _, trace = window_trace(target, choice.split, choice.index)
row = trace.series_index(0, choice.channel)

# --- the prompt -----------------------------------------------------------------------------------
st.subheader("The prompt")
if not trace.prompts:
    st.info(f"llm_mode is '{config.model.llm_mode}': this ablation has no LLM and no prompt; only the "
            "reprogrammed patches reach the replacement layer.")
else:
    prompt = trace.prompts[row]
    token_ids = trace.prompt_token_ids[row]
    patches = trace.patches.shape[1]
    columns = st.columns(3)
    columns[0].metric("Prompt tokens", len(token_ids))
    columns[1].metric("Patch positions", patches)
    columns[2].metric("LLM sequence", len(token_ids) + patches, help="Prompt tokens, then the reprogrammed patches.")
    st.html(charts.highlighted_prompt(model.prompt_builder.segments(trace.statistics, row)))
    st.caption(f"Exactly as fed to {model.backbone.spec.name} ({model.prompt_style} style). Highlighted: "
               "min, max and median (of the normalised window), trend, top lags (autocorrelation), and the lengths.")
    statistics = trace.statistics
    if statistics is not None:
        st.dataframe(pd.DataFrame([{
            "min": float(statistics.minimum[row]), "max": float(statistics.maximum[row]),
            "median": float(statistics.median[row]), "trend (sum of differences)": float(statistics.trend[row]),
            "top lags": str(statistics.lags[row].tolist())}]), hide_index=True, key="prompt_statistics")
    with st.expander(f"The {len(token_ids)} tokens"):
        tokenizer = model.backbone.tokenizer
        st.code(" | ".join(repr(tokenizer.decode([token]))[1:-1] for token in token_ids), language=None,
                wrap_lines=True)
        st.caption("Each token as the tokenizer decodes it alone, separated by ' | '.")

# --- patch x prototype attention -------------------------------------------------------------------
st.subheader("Patch-to-prototype attention")
attention = trace.reprogramming_attention[row].numpy()  # (H, P, S)
heads, patch_count, prototype_count = attention.shape
top_k = st.slider("Prototypes shown (top-k by attention over all heads and patches)", 2,
                  min(60, prototype_count), min(20, prototype_count), key="prompt_top_k")
chosen = top_prototypes(attention, top_k)
view = st.segmented_control("Heads", ["average"] + [f"head {h}" for h in range(heads)], default="average",
                            key="prompt_head") or "average"
shown = attention.mean(axis=0) if view == "average" else attention[int(view.split()[1])]
st.plotly_chart(charts.heatmap(shown[:, chosen], [str(p) for p in chosen], list(range(patch_count)),
                               "prototype", "patch", "attention",
                               f"Attention of each patch over the top {len(chosen)} prototypes ({view})",
                               height=max(320, 22 * patch_count + 120)), key="prompt_attention")
entropy = float(attention_entropy(attention).mean())
shown_share = float(attention[:, :, chosen].sum(axis=-1).mean())
st.caption(f"Each row sums to 1 over all {prototype_count} prototypes; the shown ones carry {shown_share:.0%} of "
           f"the weight. Mean entropy {entropy:.2f} nats (uniform attention: {math.log(prototype_count):.2f}).")
with st.expander("All heads side by side"):
    st.plotly_chart(charts.attention_heads_grid(attention[:, :, chosen], chosen), key="prompt_heads_grid")

# --- words near a prototype, prototypes of a patch -------------------------------------------------
left, right = st.columns(2)
with left:
    st.markdown("**A prototype's nearest words**")
    prototype = st.selectbox("Prototype", [int(p) for p in chosen], key="prompt_prototype")
    with st.spinner("Searching the vocabulary ..."):
        nearest = words.nearest_tokens(model, [prototype], k=10)[0]
        heavy = words.top_mapping_tokens(model, [prototype], k=10)[0]
    st.dataframe(pd.DataFrame({"nearest token": nearest.tokens, "cosine": nearest.scores,
                               "largest mapping weight": heavy.tokens, "weight": heavy.scores}),
                 hide_index=True, key="prompt_words")
    st.caption("An approximation: a prototype is a weighted mix of all the vocabulary's embeddings, not a "
               "word. Nearest tokens (cosine similarity) and the tokens with the largest mixing weights are "
               "two readable summaries; they can disagree.")
with right:
    st.markdown("**What one patch attends to**")
    patch = st.slider("Patch", 0, patch_count - 1, 0, key="prompt_patch")
    table = patch_top_prototypes(attention, patch, k=10)
    near = {w.prototype: ", ".join(repr(t.strip()) for t in w.tokens[:3])
            for w in words.nearest_tokens(model, table["prototype"].tolist(), k=3)}
    table["nearest words (approx.)"] = table["prototype"].map(near)
    st.dataframe(table, hide_index=True, key="prompt_patch_table")
    st.caption(f"Average over the {heads} heads. A uniform patch would give each prototype "
               f"{1 / prototype_count:.4f}.")
