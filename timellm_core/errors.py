"""Errors the package raises on purpose: each carries a message a person can act on.

Pages show ``str(error)`` with ``st.error``; the CLI prints it and exits with status 2.
Anything that is not a ``TimeLLMError`` is a bug.
"""


class TimeLLMError(Exception):
    """Base class: a problem the user can fix, described in plain words."""


class ConfigError(TimeLLMError):
    """A setting is out of range or inconsistent with another one."""


class DataError(TimeLLMError):
    """A dataset is missing, unreadable, malformed or too short."""


class BackboneError(TimeLLMError):
    """A language model cannot be found, loaded, quantised or truncated."""


class RunError(TimeLLMError):
    """A run folder or checkpoint is missing, corrupt or does not match."""


class TrainingError(TimeLLMError):
    """Training stopped on a fault (an exception in a step, a NaN loss, ...)."""
