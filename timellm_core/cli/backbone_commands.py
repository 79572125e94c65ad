"""``backbones list | info | fetch``: what can be loaded, what a loaded backbone is, and downloading one."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from timellm_core.backbones.memory import PRECISIONS, GIB


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("backbones", help="list, inspect and fetch LLM backbones")
    commands = parser.add_subparsers(dest="backbones_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    listing = commands.add_parser("list", help="catalogue with availability, sizes and weight memory")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_list)

    info = commands.add_parser("info", help="load a backbone and report what it is")
    info.add_argument("name", metavar="NAME_OR_PATH", help="catalogue name, model folder, .gguf file or cached hub id")
    info.add_argument("--llm_layers", type=int, default=None, help="keep the first K layers (default: all)")
    info.add_argument("--load_in_4bit", action="store_true", help="NF4 through bitsandbytes")
    info.add_argument("--llm_dim", type=int, default=None, help="checked against the model's hidden size")
    info.add_argument("--trust_remote_code", action="store_true", help="allow code from the model folder")
    info.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(handler=_info)

    fetch = commands.add_parser("fetch", help="download a backbone into base_models/ (needs network)")
    fetch.add_argument("name", metavar="NAME", help="catalogue name or hub id")
    fetch.set_defaults(handler=_fetch)


def catalogue_rows() -> list[dict[str, Any]]:
    """One row per catalogue entry: facts, availability and weight memory (all layers) per precision."""
    from timellm_core.backbones.catalogue import is_available, list_backbones
    from timellm_core.backbones.memory import frozen_weight_bytes, model_params

    rows = []
    for spec in list_backbones():
        source = "built on the fly" if spec.tiny else (spec.hub_id or "")
        if spec.wheel:
            source += f" | pip wheel {spec.wheel}"
        rows.append({
            "name": spec.name, "family": spec.family, "source": source, "available": is_available(spec),
            "hidden_size": spec.hidden_size, "layers": spec.num_layers, "vocab_size": spec.vocab_size,
            "params": spec.params or model_params(spec),
            "weight_bytes": {precision: frozen_weight_bytes(spec, spec.num_layers, precision)
                             for precision in PRECISIONS},
            "description": spec.description,
        })
    return rows


def _gb(value: float) -> str:
    return f"{value / GIB:.2f}"


def _list(args: argparse.Namespace) -> int:
    rows = catalogue_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'name':<18} {'family':<6} {'avail':<5} {'hidden':>6} {'layers':>6} {'params':>8} " \
             f"{'fp32 GB':>8} {'bf16 GB':>8} {'4bit GB':>8}  source"
    print(header)
    for row in rows:
        memory = row["weight_bytes"]
        print(f"{row['name']:<18} {row['family']:<6} {'yes' if row['available'] else 'no':<5} "
              f"{row['hidden_size']:>6} {row['layers']:>6} {row['params'] / 1e6:>7.1f}M "
              f"{_gb(memory['fp32']):>8} {_gb(memory['bf16']):>8} {_gb(memory['4bit']):>8}  {row['source']}")
    print("\nMemory: frozen weights of all layers (4bit: bf16 for what is not quantised). "
          "Training needs more: see `backbones info` and the memory planner.")
    return 0


def _info(args: argparse.Namespace) -> int:
    from timellm_core.backbones.catalogue import resolve_backbone_spec
    from timellm_core.backbones.loading import load_backbone
    from timellm_core.backbones.quantization import parameter_count
    from timellm_core.config import BackboneConfig

    spec = resolve_backbone_spec(args.name)
    layers = args.llm_layers if args.llm_layers is not None else spec.num_layers
    config = BackboneConfig(name=args.name, llm_layers=int(layers or 1), load_in_4bit=args.load_in_4bit,
                            trust_remote_code=args.trust_remote_code, llm_dim=args.llm_dim)
    started = time.perf_counter()
    backbone = load_backbone(config, device=args.device)
    seconds = time.perf_counter() - started
    report = {
        "name": spec.name, "family": backbone.family, "hidden_size": backbone.hidden_size,
        "layers": backbone.num_layers, "vocab_size": backbone.vocab_size, "causal": backbone.causal,
        "params": parameter_count(backbone.model),
        "load_in_4bit": backbone.load_in_4bit, "quantized_linear_layers": backbone.quantized_linear_layers,
        "memory_bytes": backbone.memory_bytes, "device": str(backbone.device),
        "dtype": str(backbone.compute_dtype).replace("torch.", ""), "pad_token": backbone.tokenizer.pad_token,
        "load_seconds": round(seconds, 3), "notes": backbone.notes,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for key, value in report.items():
        if key == "notes":
            continue
        shown = f"{value} ({value / 2 ** 20:.1f} MiB)" if key == "memory_bytes" else value
        print(f"{key:<24} {shown}")
    for note in backbone.notes:
        print(f"note: {note}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from timellm_core.backbones.fetch import fetch_backbone

    def progress(message: str, fraction: float | None) -> None:
        prefix = f"[{fraction * 100:3.0f}%] " if fraction is not None else ""
        print(prefix + message, file=sys.stderr, flush=True)

    folder = fetch_backbone(args.name, progress=progress)
    print(folder)
    return 0
