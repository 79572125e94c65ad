"""The Time-LLM model: layers, prompt, LLM runner, ablations and the ``TimeLLM`` module."""

from timellm_core.model.prototype_words import PrototypeWords, nearest_tokens, top_mapping_tokens  # noqa: F401
from timellm_core.model.reference_checkpoint import load_reference_state_dict  # noqa: F401
from timellm_core.model.timellm import TimeLLM  # noqa: F401
from timellm_core.model.trace import Trace  # noqa: F401
