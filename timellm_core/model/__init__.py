"""The Time-LLM model: layers, prompt, LLM runner, ablations and the ``TimeLLM`` module."""

from timellm_core.model.timellm import TimeLLM  # noqa: F401
from timellm_core.model.trace import Trace  # noqa: F401
