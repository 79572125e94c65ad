"""The first half of reading a CSV file: open it (path, bytes or upload), guess its encoding and
separator from the first 64 KiB, and parse it into a raw frame. ``csv_checks`` checks the result.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import BinaryIO, Union

import pandas as pd

from timellm_core.errors import DataError

SEPARATORS = (",", ";", "\t")
_SNIFF_BYTES = 64 * 1024

CsvSource = Union[str, os.PathLike, bytes, BinaryIO]


def open_source(source: CsvSource) -> tuple[str, str | bytes, int]:
    """(label for messages, path string or bytes, size in bytes)."""
    if isinstance(source, (bytes, bytearray)):
        return "The uploaded CSV", bytes(source), len(source)
    if hasattr(source, "getvalue") or hasattr(source, "read"):
        name = getattr(source, "name", None)
        data = source.getvalue() if hasattr(source, "getvalue") else source.read()
        return (f"The file {name}" if name else "The uploaded CSV"), bytes(data), len(data)
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(f"CSV file not found: {path}. Check the path (relative paths start at "
                        f"{Path.cwd()}).")
    return f"The file {path}", str(path), path.stat().st_size


def read_head(payload: str | bytes) -> bytes:
    if isinstance(payload, bytes):
        return payload[:_SNIFF_BYTES]
    with open(payload, "rb") as handle:
        return handle.read(_SNIFF_BYTES)


def candidate_encodings(head: bytes) -> list[str]:
    if head.startswith(b"\xef\xbb\xbf"):
        return ["utf-8-sig"]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return ["utf-16"]
    # UTF-16 without a byte-order mark (some Windows exports): ASCII text has a zero in every other byte.
    # Real UTF-8 or GBK text never holds zero bytes, so this cannot misread them.
    even, odd = head[0::2], head[1::2]
    if odd and odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return ["utf-16-le"]
    if even and even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return ["utf-16-be"]
    return ["utf-8", "gbk"]


def sniff_separator(head: bytes, encoding: str) -> tuple[str, str]:
    """The separator whose count is the same on the header and the first data lines; the decimal mark."""
    text = head.decode(encoding, errors="replace")
    lines = [line for line in text.splitlines()[:7] if line.strip()]
    if len(lines) > 1 and len(head) == _SNIFF_BYTES:
        lines = lines[:-1]  # the last line may be cut off
    header, body = lines[0], lines[1:]
    counts = {sep: [line.count(sep) for line in lines] for sep in SEPARATORS}
    consistent = [sep for sep in SEPARATORS if counts[sep][0] > 0 and len(set(counts[sep])) == 1]
    pool = consistent or [sep for sep in SEPARATORS if header.count(sep) > 0] or [","]
    separator = max(pool, key=lambda sep: counts[sep][0])
    # "1,5" with a semicolon or tab separator: a decimal comma (European spreadsheets).
    decimal = "," if separator != "," and any(re.search(r"\d,\d", line) for line in body) else "."
    return separator, decimal


def parse_csv(label: str, payload: str | bytes, encodings: list[str], separator: str,
              decimal: str) -> tuple[pd.DataFrame, str]:
    """The raw frame (column names exactly as the header writes them, stripped) and the encoding used."""
    for encoding in encodings:
        handle = io.BytesIO(payload) if isinstance(payload, bytes) else payload
        try:
            # Only empty cells become NaN while parsing; "n/a"-like text is kept, so it can be counted.
            frame = pd.read_csv(handle, sep=separator, decimal=decimal, encoding=encoding,
                                skipinitialspace=True, index_col=False, low_memory=False,
                                keep_default_na=False, na_values=[""])
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise DataError(f"{label} is empty: expected a header line and data rows.") from None
        except pd.errors.ParserError as error:
            raise DataError(f"{label} could not be parsed as CSV ({str(error).strip()}). Every line must have "
                            "as many fields as the header.") from None
        return _with_header_as_written(frame, payload, encoding, separator), encoding
    raise DataError(f"{label} is neither UTF-8 nor GBK text. Save it as UTF-8 CSV and try again.")


def _with_header_as_written(frame: pd.DataFrame, payload: str | bytes, encoding: str,
                            separator: str) -> pd.DataFrame:
    """Undo pandas' renaming of repeated names (`a,a` -> `a`, `a.1`), so the check can name them.

    Empty header cells keep pandas' "Unnamed: k" names (trailing separators are dropped later).
    """
    handle = io.BytesIO(payload) if isinstance(payload, bytes) else payload
    header = pd.read_csv(handle, sep=separator, encoding=encoding, header=None, nrows=1, dtype=str,
                         skipinitialspace=True, index_col=False, keep_default_na=False)
    written = [str(cell).strip() for cell in header.iloc[0]] if len(header) else []
    if len(written) == frame.shape[1]:
        frame.columns = [name if name else str(parsed) for name, parsed in zip(written, frame.columns)]
    return frame
