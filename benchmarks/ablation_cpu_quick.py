"""The ablation study of Tan et al. (NeurIPS 2024) on the ``cpu-quick`` preset, recorded in
benchmarks/ablation_cpu_quick.md (+ .json).

Runs ``python -m timellm_core ablate --preset cpu-quick --seeds 1`` (every llm_mode: frozen, random,
none, attention, transformer) as a subprocess on the real default backbone (SmolLM2-135M at the
preset's 2 layers), measures the whole command's wall time and the machine's load around it, and
copies the study's table (``study.json`` / ``study.md``) here with those facts.

    .venv/bin/python benchmarks/ablation_cpu_quick.py [--seeds K] [--runs_dir DIR] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from timellm_core.ablation.study import STUDIES_FOLDER, STUDY_JSON, STUDY_MARKDOWN  # noqa: E402
from timellm_core.machine import cpu_model_name  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-quick")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--runs_dir", default=str(PROJECT_ROOT / "runs"))
    parser.add_argument("--output", default=str(PROJECT_ROOT / "benchmarks" / "ablation_cpu_quick.md"))
    args = parser.parse_args()

    studies = Path(args.runs_dir) / STUDIES_FOLDER
    before = set(studies.iterdir()) if studies.is_dir() else set()
    load_before = [round(value, 2) for value in os.getloadavg()]
    started = time.perf_counter()
    command = [sys.executable, "-m", "timellm_core", "ablate", "--preset", args.preset, "--seeds", str(args.seeds),
               "--runs_dir", args.runs_dir]
    completed = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    load_after = [round(value, 2) for value in os.getloadavg()]
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout + completed.stderr[-5000:])
        raise SystemExit(f"ablate failed with exit status {completed.returncode}")
    (folder,) = set(studies.iterdir()) - before
    record = json.loads((folder / STUDY_JSON).read_text())
    record["benchmark"] = {
        "command": "python -m timellm_core ablate --preset {} --seeds {}".format(args.preset, args.seeds),
        "wall_s": wall, "load_before": load_before, "load_after": load_after, "cpu": cpu_model_name(),
        "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"), "printed_table": completed.stdout,
    }
    output = Path(args.output)
    output.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    header = [
        f"# Ablation study on `{args.preset}` (Tan et al., NeurIPS 2024), recorded",
        "",
        f"Command: `{record['benchmark']['command']}`, {wall / 60:.1f} minutes for the whole command "
        f"({len(record['runs'])} runs one after the other, each in a training process of its own, each tested "
        f"plainly and shuffled). Machine: {record['benchmark']['cpu']}, {os.cpu_count()} CPUs visible, torch "
        f"{torch.__version__}, {record['benchmark']['date']}; "
        + f"load average {load_before} before, {load_after} after (the load in between is not watched: say in "
          "this file if other work ran; seconds per step and the wall time depend on it, test errors do not).",
        "",
        f"Reproduce: `.venv/bin/python benchmarks/ablation_cpu_quick.py` (writes this file and "
        f"{output.with_suffix('.json').name}; the runs stay in runs/, tagged with the study, and show on the Train "
        "page).",
        "",
        "---",
        "",
    ]
    output.write_text("\n".join(header) + (folder / STUDY_MARKDOWN).read_text())
    print(completed.stdout)
    print(f"wrote {output} and {output.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
