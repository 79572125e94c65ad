"""The dataset table: one entry per named dataset, with where its file comes from and how it splits.

Like Time-Series-Library's ``data_dict``, but each entry is a typed ``DatasetSpec`` that also
carries the canonical download URL, the expected size and checksum, the frequency, the seasonal
period (for the seasonal-naive baseline) and the description file used in the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from timellm_core.errors import DataError

SPLIT_RULES = ("ett_hour", "ett_minute", "ratio", "m4")
KINDS = ("csv", "synthetic", "custom", "m4")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DESCRIPTIONS_DIR = PROJECT_ROOT / "dataset" / "descriptions"

_ETT_BASE = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/"
# The Time-series Pile (MOMENT) keeps a byte-identical copy of the Autoformer bundle on Hugging Face.
_AUTOFORMER_BASE = "https://huggingface.co/datasets/AutonLab/Timeseries-PILE/resolve/main/forecasting/autoformer/"
_AUTOFORMER_SOURCE = ("Autoformer / Time-Series-Library benchmark bundle "
                      "(github.com/thuml/Time-Series-Library, 'all_six_datasets')")


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry: how to find, check, split and describe one dataset."""

    name: str  # display and CLI name (ETTh1, Weather, ...)
    folder: str  # sub-folder under dataset/ or $TIMELLM_DATA ("" when there is no file)
    file_name: str  # CSV file name inside folder ("" when there is no single file)
    url: str | None  # canonical direct download URL (None: generated in code or user-supplied)
    size_bytes: int | None  # file size; exact when size_exact, else approximate (MB-rounded)
    sha256: str | None  # None where unknown
    freq: str  # pandas-style step: "h", "15min", "10min", "W"; "" when guessed from the data
    split_rule: str  # ett_hour | ett_minute | ratio | m4
    target: str  # the target column (OT in every benchmark)
    period: int  # seasonal period in steps (24 hourly, 96 for 15 min, ...); 0 when guessed
    kind: str  # csv | synthetic | custom | m4
    description_file: str  # file name under dataset/descriptions/
    size_exact: bool = True  # False: size_bytes is the published rounded size, checked loosely
    source: str = ""  # where the file originally comes from, for people
    aliases: tuple[str, ...] = ()  # other accepted names (case-insensitive)
    channels: int | None = None  # published channel count, excluding the date column

    @property
    def relative_path(self) -> str:
        """``folder/file_name``: where the file goes under dataset/ or $TIMELLM_DATA."""
        return f"{self.folder}/{self.file_name}" if self.folder else self.file_name

    @property
    def has_file(self) -> bool:
        return self.kind == "csv"


def _ett(name: str, minute: bool, size: int, sha: str) -> DatasetSpec:
    return DatasetSpec(
        name=name, folder="ETT-small", file_name=f"{name}.csv", url=_ETT_BASE + f"{name}.csv",
        size_bytes=size, sha256=sha, freq="15min" if minute else "h",
        split_rule="ett_minute" if minute else "ett_hour", target="OT", period=96 if minute else 24,
        kind="csv", description_file=f"{name}.md",
        source="ETDataset, github.com/zhouhaoyi/ETDataset (ETT-small, CC BY-ND 4.0)", channels=7)


_DATASETS: tuple[DatasetSpec, ...] = (
    _ett("ETTh1", False, 2589657, "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"),
    _ett("ETTh2", False, 2417960, "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b"),
    _ett("ETTm1", True, 10360719, "6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e"),
    _ett("ETTm2", True, 9677236, "db973ca252c6410a30d0469b13d696cf919648d0f3fd588c60f03fdbdbadd1fd"),
    DatasetSpec(
        name="Weather", folder="weather", file_name="weather.csv", url=_AUTOFORMER_BASE + "weather.csv",
        size_bytes=7182728, sha256="9b2b19b13e342d9c9b9c51620d42b4be232df7fba30e7f5c4968b7c79ab138ad",
        freq="10min", split_rule="ratio", target="OT", period=144, kind="csv",
        description_file="Weather.md", source=_AUTOFORMER_SOURCE, channels=21),
    DatasetSpec(
        name="ECL", folder="electricity", file_name="electricity.csv", url=_AUTOFORMER_BASE + "electricity.csv",
        size_bytes=95_600_000, sha256=None, size_exact=False, freq="h", split_rule="ratio", target="OT",
        period=24, kind="csv", description_file="ECL.md", source=_AUTOFORMER_SOURCE,
        aliases=("electricity",), channels=321),
    DatasetSpec(
        name="Traffic", folder="traffic", file_name="traffic.csv", url=_AUTOFORMER_BASE + "traffic.csv",
        size_bytes=136_000_000, sha256=None, size_exact=False, freq="h", split_rule="ratio", target="OT",
        period=24, kind="csv", description_file="Traffic.md", source=_AUTOFORMER_SOURCE, channels=862),
    DatasetSpec(
        name="ILI", folder="illness", file_name="national_illness.csv",
        url=_AUTOFORMER_BASE + "national_illness.csv", size_bytes=66_700, sha256=None, size_exact=False,
        freq="W", split_rule="ratio", target="OT", period=52, kind="csv", description_file="ILI.md",
        source=_AUTOFORMER_SOURCE, aliases=("illness", "national_illness"), channels=7),
    DatasetSpec(
        name="Synthetic", folder="", file_name="", url=None, size_bytes=None, sha256=None, freq="h",
        split_rule="ratio", target="OT", period=24, kind="synthetic", description_file="Synthetic.md",
        source="generated in code (timellm_core/data/synthetic.py)", channels=6),
    DatasetSpec(
        name="custom", folder="", file_name="", url=None, size_bytes=None, sha256=None, freq="",
        split_rule="ratio", target="OT", period=0, kind="custom", description_file="custom.md",
        source="your own CSV file (--data_path)", aliases=("csv",)),
    DatasetSpec(
        name="m4", folder="m4", file_name="", url="https://github.com/Mcompetitions/M4-methods/tree/master/Dataset",
        size_bytes=None, sha256=None, freq="", split_rule="m4", target="OT", period=0, kind="m4",
        description_file="m4.md", source="M4 competition, github.com/Mcompetitions/M4-methods (Dataset)",
        aliases=("M4",)),
)


def list_datasets() -> list[DatasetSpec]:
    """Every registered dataset, in display order."""
    return list(_DATASETS)


def get_dataset_spec(name: str) -> DatasetSpec:
    """The entry for ``name`` (case-insensitive, aliases accepted); unknown names list the choices."""
    wanted = str(name).strip().lower()
    for spec in _DATASETS:
        if wanted == spec.name.lower() or wanted in (alias.lower() for alias in spec.aliases):
            return spec
    names = ", ".join(spec.name for spec in _DATASETS)
    raise DataError(f"Unknown dataset {name!r}. Choose one of: {names} "
                    "(use 'custom' with a data_path for your own CSV).")


def read_description(name: str) -> str:
    """The domain paragraph for the prompt, from ``dataset/descriptions/<file>``, as one line."""
    spec = get_dataset_spec(name)
    path = DESCRIPTIONS_DIR / spec.description_file
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"The description of {spec.name} is missing: expected {path}. "
                        "Write one short paragraph about the dataset's domain there.") from None
    # The prompt inlines the paragraph, so line breaks become spaces.
    description = " ".join(text.split())
    if not description:
        raise DataError(f"The description file {path} is empty: write one short paragraph about {spec.name}.")
    return description
