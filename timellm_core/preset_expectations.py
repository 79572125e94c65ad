"""What to expect from each preset: its time and test MSE as recorded, next to the baselines.

The figures are copied from ``benchmarks/presets.md`` (3 seeds per preset, each seed with its own
sample of windows, on ETTh1; the script is ``benchmarks/presets.py``), and a test checks that they
still agree with ``benchmarks/presets.json``. The presets with the paper's settings are hours of GPU
work: they carry what they are for instead of a measured figure.
"""

from __future__ import annotations

from dataclasses import dataclass

RECORD = "benchmarks/presets.md"
RECORDED_ON = "a 2-core AMD EPYC CPU"


@dataclass(frozen=True)
class PresetExpectation:
    minutes: float  # median wall time of `train --preset NAME`, start-up to final test
    test_mse: float  # mean over the 3 seeds, scaled space, on each run's own test windows
    test_mse_std: float
    naive_mse: float  # the baselines' mean over the same runs' test windows
    seasonal_naive_mse: float
    dlinear_mse: float  # fitted on each run's own training windows
    beats_naive_seeds: int  # of the 3 seeds, how many runs beat naive on their own test windows
    beats_seasonal_naive_seeds: int

    def line(self) -> str:
        beats = (f"beats naive on {self.beats_naive_seeds} of 3 seeds and seasonal naive on "
                 f"{self.beats_seasonal_naive_seeds} of 3")
        return (f"about {self.minutes:.0f} min on {RECORDED_ON}; test MSE {self.test_mse:.3f} ± "
                f"{self.test_mse_std:.3f} over 3 seeds (naive {self.naive_mse:.3f}, seasonal naive "
                f"{self.seasonal_naive_mse:.3f}, DLinear {self.dlinear_mse:.3f} on the same windows); {beats} "
                f"({RECORD})")

    def short(self) -> str:
        return f"~{self.minutes:.0f} min, MSE {self.test_mse:.3f}"


MEASURED: dict[str, PresetExpectation] = {
    "cpu-quick": PresetExpectation(minutes=2.32, test_mse=0.4685, test_mse_std=0.0313, naive_mse=1.2700,
                                   seasonal_naive_mse=0.5521, dlinear_mse=0.4242, beats_naive_seeds=3,
                                   beats_seasonal_naive_seeds=3),
    "classroom": PresetExpectation(minutes=4.51, test_mse=0.4383, test_mse_std=0.0336, naive_mse=1.2700,
                                   seasonal_naive_mse=0.5521, dlinear_mse=0.4213, beats_naive_seeds=3,
                                   beats_seasonal_naive_seeds=3),
    # One channel (HULL) at 24 steps, so its MSE is on another scale than the 7-channel, 96-step presets'.
    "qwen-cpu": PresetExpectation(minutes=3.87, test_mse=0.2313, test_mse_std=0.0288, naive_mse=0.5126,
                                  seasonal_naive_mse=0.2705, dlinear_mse=0.1951, beats_naive_seeds=3,
                                  beats_seasonal_naive_seeds=3),
}

NOT_MEASURED: dict[str, str] = {
    "paper-etth1-96": "the reference's ETTh1 script on LLaMA-7B: hours on GPUs, not recorded here; the paper "
                      "publishes test MSE 0.362 / MAE 0.392",
    "paper-etth1-96-smollm2": "the paper's ETTh1-96 settings on SmolLM2-135M (30 layers): hours of GPU work, not "
                              "recorded here; a finished run shows the published 0.362 next to its own",
    "m4-hourly": "the reference's M4 settings (10 epochs over 414 series): a GPU job; a 2-epoch CPU run is in "
                 "benchmarks/m4_results.md",
}


def expectation_line(name: str) -> str:
    """One sentence for the Train page: the preset's recorded time and result, or why there is none."""
    if name in MEASURED:
        return MEASURED[name].line()
    return NOT_MEASURED.get(name, "not recorded yet")


def expectation_short(name: str) -> str:
    """A few words for the preset list ("~9 min, MSE 0.371"); empty when not measured."""
    return MEASURED[name].short() if name in MEASURED else ""
