"""Guards for what comes from outside: file names, run ids, paths, the size limit, weight files, secrets.

Every check raises a ``TimeLLMError`` (or the subclass the caller names) whose message says what
is wrong and what to do, so the CLI and the app can show it as it is.

Rules kept here, in one place:

- An uploaded file name or a run id becomes a single folder entry of ``[A-Za-z0-9_.-]``: no path
  separators, no ``..``, no NUL or control characters, never hidden (no leading dot).
- A path built from user input is resolved and must stay under its root (``confine``).
- A CSV (a file on disk or an upload) is at most ``MAX_UPLOAD_BYTES`` (the data layer's reader checks
  it before reading); ``.streamlit/config.toml`` sets ``server.maxUploadSize`` to ``MAX_UPLOAD_MB``.
- Weights are read only from safetensors or GGUF files: both are plain tensors plus metadata, and
  loading them cannot run code. Pickle-based formats (``.bin``, ``.pt``, ``.pth``, ``.ckpt``,
  ``.pkl``) are refused; ``torch.load`` is used nowhere without ``weights_only=True``.
- Secrets (Hugging Face tokens and any environment variable whose name says TOKEN, SECRET, PASSWORD,
  API_KEY, ACCESS_KEY or PRIVATE_KEY) are replaced by ``[redacted]`` in text that goes to a terminal
  or a log.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Mapping

from timellm_core.errors import BackboneError, TimeLLMError

# Upload and CSV size limit. Streamlit counts maxUploadSize in MiB, so its limit (200 MiB) is a
# little above this one: a file between the two reaches the core's check, which explains itself.
MAX_UPLOAD_MB = 200
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1_000_000  # Traffic, the largest benchmark CSV, is ~136 MB

MAX_NAME_LENGTH = 100
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

SAFE_WEIGHT_SUFFIXES = (".safetensors", ".gguf")
PICKLE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")

REDACTED = "[redacted]"
SECRET_ENV_NAMES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN", "HF_API_TOKEN")
_SECRET_NAME_HINTS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "ACCESS_KEY", "PRIVATE_KEY")
_HF_TOKEN_PATTERN = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")
_MIN_SECRET_LENGTH = 8  # shorter values ("1", "true") would redact ordinary words


# --- names -----------------------------------------------------------------------------------

def _last_component(name: str) -> str:
    """The final component whether the name was written with '/' or '\\' (a Windows browser's path)."""
    return PureWindowsPath(PurePosixPath(name).name).name


def safe_file_name(name: object, default: str = "upload", max_length: int = MAX_NAME_LENGTH) -> str:
    """A file name safe to create inside a chosen folder, derived from an untrusted one.

    Keeps only the last path component, turns every character outside ``[A-Za-z0-9_.-]``
    (separators, NUL, control characters, spaces, accents) into ``_``, drops leading dots and
    dashes, and caps the length while keeping the extension. Returns ``default`` when nothing
    usable is left, so the result is never empty, ``.``, ``..`` or hidden.
    """
    text = unicodedata.normalize("NFKD", str(name or "")).encode("ascii", "ignore").decode("ascii")
    text = text.replace("\x00", "")
    base = _last_component(text)
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", base)
    cleaned = re.sub(r"_+", "_", cleaned).lstrip(".-_")
    stem, dot, suffix = cleaned.rpartition(".")
    if dot and stem and len(suffix) <= 10:
        room = max(1, max_length - len(suffix) - 1)
        cleaned = f"{stem[:room].rstrip('.')}.{suffix}"
    else:
        cleaned = cleaned[:max_length]
    cleaned = cleaned.strip(".")
    if not cleaned or not SAFE_NAME.match(cleaned):
        return default
    return cleaned


def check_name(name: object, what: str = "name", error: type[TimeLLMError] = TimeLLMError) -> str:
    """``name`` unchanged when it is one safe folder entry; otherwise ``error`` saying what is allowed."""
    text = name if isinstance(name, str) else None
    if text is None or not SAFE_NAME.match(text) or set(text) <= {"."}:
        shown = repr(name)[:80]
        raise error(f"Invalid {what} {shown}: use 1 to 128 letters, digits, '_', '-' or '.', starting with a "
                    "letter, digit or '_', with no path separators, no '..' and no control characters.")
    return text


# --- paths -----------------------------------------------------------------------------------

def confine(path: str | os.PathLike[str], root: str | os.PathLike[str], what: str = "path",
            error: type[TimeLLMError] = TimeLLMError) -> Path:
    """``path`` (relative paths start at ``root``) resolved, or ``error`` if it leaves ``root``.

    Symbolic links are resolved first, so a link inside ``root`` that points elsewhere is refused too.
    """
    text = os.fspath(path)
    if "\x00" in str(text):
        raise error(f"The {what} contains a NUL character: give a plain file or folder name.")
    base = Path(root).expanduser().resolve()
    candidate = Path(text).expanduser()
    resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if resolved != base and base not in resolved.parents:
        raise error(f"The {what} {str(text)!r} points outside {base}: give a name inside that folder "
                    "(no '..', no absolute path elsewhere).")
    return resolved


def child_path(root: str | os.PathLike[str], name: object, what: str = "name",
               error: type[TimeLLMError] = TimeLLMError) -> Path:
    """``root / name`` for a checked single-entry ``name``, confined to ``root``."""
    return confine(Path(root) / check_name(name, what, error), root, what, error)


# --- weights ---------------------------------------------------------------------------------

def check_weight_file(path: str | os.PathLike[str]) -> Path:
    """``path`` when it is a safetensors or GGUF file; a BackboneError for pickle formats and others."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in SAFE_WEIGHT_SUFFIXES:
        return path
    if suffix in PICKLE_WEIGHT_SUFFIXES:
        raise BackboneError(
            f"{path.name} is a pickle-based weight file, which can run code when loaded: it is not read. "
            "Convert it to safetensors (for example: load it once in a trusted environment and "
            "save_pretrained(..., safe_serialization=True)), or use a .gguf file.")
    raise BackboneError(f"{path.name} is not a weight file this package reads: use a model folder with "
                        "*.safetensors weights, or a .gguf file.")


def pickle_weight_files(folder: str | os.PathLike[str]) -> list[str]:
    """Names of pickle-based weight files in a model folder (reported, never loaded)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(entry.name for entry in folder.iterdir()
                  if entry.is_file() and entry.suffix.lower() in PICKLE_WEIGHT_SUFFIXES)


# --- secrets ---------------------------------------------------------------------------------

def _is_secret_name(name: str) -> bool:
    upper = name.upper()
    return upper in SECRET_ENV_NAMES or any(hint in upper for hint in _SECRET_NAME_HINTS)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking environment variables, longest first (so overlaps redact fully)."""
    environ = os.environ if environ is None else environ
    values = {value for name, value in environ.items()
              if _is_secret_name(name) and value and len(value) >= _MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact_secrets(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with token values from the environment and anything shaped like a hub token replaced."""
    for value in secret_values(environ):
        text = text.replace(value, REDACTED)
    return _HF_TOKEN_PATTERN.sub(REDACTED, text)
