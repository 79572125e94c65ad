"""Silence transformers' load reports and progress bars for one block, restoring them afterwards."""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Unused layers of a truncated checkpoint are expected, so their load report is noise here."""
    from transformers.utils import logging as hf_logging

    logger = logging.getLogger("transformers")
    previous = logger.level
    bars_were_on = hf_logging.is_progress_bar_enabled()
    logger.setLevel(logging.ERROR)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        logger.setLevel(previous)
        if bars_were_on:
            hf_logging.enable_progress_bar()
