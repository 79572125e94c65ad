"""Naive2, naive and seasonal naive on the real M4 Hourly and Weekly files match the published scores.

Published figures: Makridakis, Spiliotis, Assimakopoulos, "The M4 Competition: 100,000 time
series and 61 forecasting methods", International Journal of Forecasting 36(1), 54-74, 2020,
Table 4 (and the competition's results spreadsheet): sMAPE and MASE per frequency.
Naive2 is what OWA is relative to, so getting it right fixes every OWA the project reports.
"""

import pytest

from timellm_core.data.m4 import find_m4_file, load_m4
from timellm_core.metrics import benchmark_table

# pattern -> method -> (sMAPE, MASE), as published (three decimals).
PUBLISHED = {
    "Hourly": {"naive2": (18.383, 2.395), "naive": (43.003, 11.608), "seasonal_naive": (13.912, 1.193)},
    "Weekly": {"naive2": (9.161, 2.777), "naive": (9.161, 2.777)},
}


def m4_benchmark_table(pattern: str) -> dict[str, dict[str, float]]:
    """Naive, seasonal naive and Naive2 scored on every series of one M4 pattern."""
    series = load_m4(pattern)
    return benchmark_table(series.train, series.test_matrix(), series.meta.frequency)


def _require(pattern: str) -> None:
    for part in ("train", "test"):
        if find_m4_file(pattern, part) is None:
            pytest.fail(f"M4 {pattern} {part} file not found: set TIMELLM_DATA to the shared datasets folder.")


@pytest.mark.parametrize("pattern", ["Hourly", "Weekly"])
def test_benchmarks_match_the_m4_paper(pattern):
    _require(pattern)
    table = m4_benchmark_table(pattern)
    for method, (published_smape, published_mase) in PUBLISHED[pattern].items():
        assert table[method]["smape"] == pytest.approx(published_smape, abs=0.01), method
        assert table[method]["mase"] == pytest.approx(published_mase, abs=0.01), method
    assert table["naive2"]["owa"] == pytest.approx(1.0)


def test_hourly_owa_of_seasonal_naive_follows_from_the_published_scores():
    _require("Hourly")
    table = m4_benchmark_table("Hourly")
    expected = 0.5 * (13.912 / 18.383 + 1.193 / 2.395)
    assert table["seasonal_naive"]["owa"] == pytest.approx(expected, abs=0.002)
