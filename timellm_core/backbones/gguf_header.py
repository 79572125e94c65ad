"""Read the key/value header of a GGUF file without touching its tensors.

``gguf.GGUFReader`` maps every tensor (seconds for a 100 MB file); the catalogue only needs the
architecture and a few sizes, which sit at the start of the file. Format: magic ``GGUF``, uint32
version, uint64 tensor count, uint64 key/value count, then key/value pairs (little endian).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from timellm_core.errors import BackboneError

GGUF_MAGIC = b"GGUF"

# GGUF value types -> struct format (scalars); 8 = string, 9 = array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def is_gguf(path: str | Path) -> bool:
    """True when the file starts with the GGUF magic bytes."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _read(handle: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise EOFError
    return struct.unpack(fmt, data)[0]


def _read_string(handle: BinaryIO) -> str:
    length = _read(handle, "<Q")
    return handle.read(length).decode("utf-8", errors="replace")


def _read_value(handle: BinaryIO, value_type: int) -> Any:
    if value_type in _SCALARS:
        return _read(handle, _SCALARS[value_type])
    if value_type == _STRING:
        return _read_string(handle)
    if value_type == _ARRAY:
        item_type, count = _read(handle, "<I"), _read(handle, "<Q")
        if item_type in _SCALARS:  # skip the bytes; only the length matters here
            handle.seek(struct.calcsize(_SCALARS[item_type]) * count, 1)
        else:
            for _ in range(count):
                _read_value(handle, item_type)
        return _ArrayLength(count)
    raise ValueError(f"unknown GGUF value type {value_type}")


class _ArrayLength(int):
    """An array value, reduced to its length."""


@dataclass(frozen=True)
class GGUFTensorInfo:
    """Where one tensor lies in a GGUF file (its bytes are not read)."""

    name: str
    dims: tuple[int, ...]  # GGUF order: fastest-varying first (numpy shape is reversed)
    type_id: int  # a gguf.GGMLQuantizationType value
    offset: int  # bytes from the start of the file


def _open_checked(path: Path) -> BinaryIO:
    if not path.is_file():
        raise BackboneError(f"GGUF file {path} does not exist. Check the path.")
    handle = open(path, "rb")
    if handle.read(4) != GGUF_MAGIC:
        handle.close()
        raise BackboneError(
            f"{path} is not a GGUF file (it does not start with the GGUF magic bytes). "
            "Give a .gguf file written by llama.cpp / gguf, or a Hugging Face model folder.")
    return handle


def _read_metadata(handle: BinaryIO, path: Path) -> tuple[dict[str, Any], int]:
    """(metadata with arrays reduced to their lengths, tensor count); the handle ends after the metadata."""
    version = _read(handle, "<I")
    if version < 2:
        raise BackboneError(f"{path} is GGUF version {version}; only versions 2 and 3 are supported.")
    tensor_count, kv_count = _read(handle, "<Q"), _read(handle, "<Q")
    header: dict[str, Any] = {"GGUF.version": version}
    for _ in range(kv_count):
        key = _read_string(handle)
        header[key] = _read_value(handle, _read(handle, "<I"))
    return header, tensor_count


def _damaged(path: Path, error: Exception) -> BackboneError:
    return BackboneError(f"{path} is a damaged or truncated GGUF file ({error}). Download it again.")


def read_gguf_header(path: str | Path) -> dict[str, Any]:
    """The file's metadata as a dict (arrays reduced to their lengths); a clear error when not GGUF."""
    path = Path(path)
    with _open_checked(path) as handle:
        try:
            return _read_metadata(handle, path)[0]
        except (EOFError, ValueError, struct.error, UnicodeDecodeError) as error:
            raise _damaged(path, error) from None


def read_gguf_tensor_directory(path: str | Path) -> tuple[dict[str, Any], list[GGUFTensorInfo]]:
    """(metadata, where each tensor lies), read in a fraction of a second: no tensor data is touched."""
    path = Path(path)
    with _open_checked(path) as handle:
        try:
            header, tensor_count = _read_metadata(handle, path)
            entries = []
            for _ in range(tensor_count):
                name = _read_string(handle)
                dims = tuple(_read(handle, "<Q") for _ in range(_read(handle, "<I")))
                entries.append((name, dims, _read(handle, "<I"), _read(handle, "<Q")))
            alignment = int(header.get("general.alignment", 32))
            data_start = -(-handle.tell() // alignment) * alignment  # rounded up to the alignment
        except (EOFError, ValueError, struct.error, UnicodeDecodeError) as error:
            raise _damaged(path, error) from None
    return header, [GGUFTensorInfo(name, dims, type_id, data_start + offset) for name, dims, type_id, offset in entries]


def gguf_facts(header: dict[str, Any]) -> dict[str, Any]:
    """Architecture and sizes from a GGUF header, under this package's names."""
    arch = header.get("general.architecture")
    vocab = header.get(f"{arch}.vocab_size") or header.get("tokenizer.ggml.tokens")
    return {
        "architecture": arch,
        "hidden_size": header.get(f"{arch}.embedding_length"),
        "num_layers": header.get(f"{arch}.block_count"),
        "vocab_size": int(vocab) if vocab is not None else None,
        "num_heads": header.get(f"{arch}.attention.head_count"),
        "num_kv_heads": header.get(f"{arch}.attention.head_count_kv"),
        "intermediate_size": header.get(f"{arch}.feed_forward_length"),
        "max_positions": header.get(f"{arch}.context_length"),
    }
