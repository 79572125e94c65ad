"""Datasets: the registry, finding and fetching files, CSV checks, splits, scaling and windows.

The one entry point for training and the app is ``prepare_data(config, seq_len, pred_len)``,
which returns a ``ForecastData`` (docs/how-it-works.md §4.2: borders, train-split scaler, windows).
"""

from timellm_core.data.csv_checks import CheckReport, check_csv, read_series_csv
from timellm_core.data.forecast_data import ForecastData
from timellm_core.data.locate import fetch_dataset, find_dataset_file
from timellm_core.data.markers import damaged_names, describe_sentinels, find_sentinels, repaired_name
from timellm_core.data.prepare import channel_names, load_frame, prepare_data
from timellm_core.data.registry import (
    DatasetSpec,
    get_dataset_spec,
    list_datasets,
    read_description,
)

__all__ = [
    "channel_names",
    "CheckReport",
    "DatasetSpec",
    "ForecastData",
    "check_csv",
    "damaged_names",
    "describe_sentinels",
    "fetch_dataset",
    "find_dataset_file",
    "find_sentinels",
    "get_dataset_spec",
    "list_datasets",
    "load_frame",
    "prepare_data",
    "read_description",
    "read_series_csv",
    "repaired_name",
]
