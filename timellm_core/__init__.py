"""Time-LLM: forecasting time series by reprogramming a frozen language model.

The package never imports Streamlit; the app in ``app.py`` and ``pages/`` sits on top.
"""

from timellm_core.errors import (  # noqa: F401
    BackboneError,
    ConfigError,
    DataError,
    RunError,
    TimeLLMError,
    TrainingError,
)

__version__ = "0.1.0"
