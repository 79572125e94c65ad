"""The engine that runs the frozen LLM over [prompt][reprogrammed patches], exactly and fast.

The paper's model (``timellm_core.model``) talks to it through ``LLMRunner``: ``encode_prompt``,
``run_patches`` and ``word_embeddings``. Inside: the shared-prefix key/value cache, the patch-only
autograd run, grouped-head attention without key/value copies (``grouped_attention``), the gated
MLP recomputed in the backward pass (``gated_mlp``) and, on the fast path, lower-precision copies
of the weights. See docs/how-it-works.md for why the exact path gives the same numbers.
"""

from timellm_core.llm.runner import LLMOutput, LLMRunner, PromptState  # noqa: F401
