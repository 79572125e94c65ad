"""``python -m timellm_core``: one sub-command module per area.

Each module in ``COMMAND_MODULES`` has ``register(subparsers)``, which adds its parser
and sets ``handler=function(args) -> int``. A ``TimeLLMError`` is printed (no traceback)
and the process exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from timellm_core.cli import (
    ablate_commands, backbone_commands, bench_commands, data_commands, predict_commands, train_commands)
from timellm_core.errors import TimeLLMError
from timellm_core.safety import redact_secrets

# Each module imports its heavy parts (torch, transformers) inside its handlers, so `--help` stays quick.
COMMAND_MODULES = (data_commands, backbone_commands, train_commands, predict_commands, ablate_commands,
                   bench_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m timellm_core",
        description="Time-LLM: forecast time series by reprogramming a frozen language model.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except TimeLLMError as error:
        # Messages may quote a URL or a library's error text: never echo a token from the environment.
        print(f"error: {redact_secrets(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
