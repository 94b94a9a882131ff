"""Safe model files: plain tensors + JSON metadata, loaded with ``weights_only=True`` only.

Model files are shared between labs, so loading one must never run code: the file holds nothing but a
state dict of tensors and a JSON string, which ``torch.load(weights_only=True)`` can read without
unpickling arbitrary objects. Every failure becomes a one-line ``CheckpointError`` saying what to do.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from .._io import atomic_write
from ..errors import CheckpointError, DcmixError
from .classifier import ChannelClassifier
from .panel import PhenotypePanel, build_model

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "save_checkpoint", "load_checkpoint", "match_channels",
           "to_jsonable"]

FORMAT_NAME = "napari-dcmix"
FORMAT_VERSION = 1


def to_jsonable(value: Any) -> Any:
    """Convert numpy/torch values (arrays, scalars), tuples and paths to plain JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return to_jsonable(value.detach().cpu().numpy())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in model metadata")


def save_checkpoint(path: str | os.PathLike, model: ChannelClassifier | PhenotypePanel, metadata: dict[str, Any]) -> None:
    """Write ``model`` and ``metadata`` to ``path`` atomically (never a half-written file)."""
    meta = dict(metadata or {})
    meta["model"] = model.config()
    meta["package_version"] = __version__
    meta["format_version"] = FORMAT_VERSION
    try:
        metadata_json = json.dumps(to_jsonable(meta), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise DcmixError(f"cannot save model to {path}: metadata is not serialisable ({err})") from None
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    bad = non_finite_tensors(state)
    if bad:
        raise DcmixError(f"model not saved to {path}: {', '.join(bad[:3])} hold non-finite values (NaN or Inf), so "
                         "its predictions and α would be meaningless; retrain (check the images for extreme pixels)")
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "state_dict": state,
        "metadata_json": metadata_json,
    }
    try:
        with atomic_write(path, "wb") as handle:
            torch.save(payload, handle)
    except OSError as err:
        raise DcmixError(f"cannot save model to {path}: {err.strerror or err}; "
                         "choose a folder with space that you can write to") from None


def non_finite_tensors(state: dict) -> list[str]:
    """Names of floating-point tensors in ``state`` holding NaN or Inf (a model that must not be used)."""
    return [name for name, t in state.items()
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]


def _load_failure_reason(err: BaseException) -> str:
    """Short reason from torch's multi-paragraph weights-only message (names the refused global)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line:
            detail = line[:160].rstrip(".")
            return f"it holds code or objects other than plain tensors, refused for safety: {detail}"
    for line in lines:
        if line.lower().startswith("unsupported"):
            return f"not a readable torch file: {line[:160]}"
    return f"not a readable torch file: {_first_line(err)}"


def load_checkpoint(path: str | os.PathLike,
                    map_location: str | torch.device = "cpu") -> tuple[ChannelClassifier | PhenotypePanel, dict[str, Any]]:
    """Load a model saved by ``save_checkpoint``; returns (model in eval mode, metadata)."""
    path = Path(path)
    choose = "choose a model saved by napari-dcmix"
    if not path.exists():
        raise CheckpointError(f"model file {path} does not exist; check the path or {choose}")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file; {choose}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to read is the user's file, never a crash
        if isinstance(err, OSError):
            reason = err.strerror or _first_line(err)
            raise CheckpointError(f"cannot read model file {path}: {reason}; "
                                  "check that it is readable or choose another file") from None
        why = _load_failure_reason(err)
        raise CheckpointError(f"{path} is not a napari-dcmix model file ({why}); {choose}") from None

    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not a napari-dcmix model file (no napari-dcmix format marker); "
                              f"{choose}")
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path} has no valid format version; {choose}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} was saved by a newer napari-dcmix (model format {version}, this "
                              f"version reads up to {FORMAT_VERSION}); upgrade napari-dcmix to load it")
    state = payload.get("state_dict")
    metadata_json = payload.get("metadata_json")
    if not isinstance(state, dict) or not isinstance(metadata_json, str):
        raise CheckpointError(f"{path} is damaged (state_dict or metadata missing); {choose}")
    try:
        metadata = json.loads(metadata_json)
    except ValueError as err:
        raise CheckpointError(f"{path} is damaged (metadata is not JSON: {err}); {choose}") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("model"), dict):
        raise CheckpointError(f"{path} is damaged (no model description in metadata); {choose}")
    try:
        model = build_model(metadata["model"])  # a classifier, or a phenotype panel of them
    except (DcmixError, TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path} describes a model this version cannot build ({_first_line(err)}); "
                              f"upgrade napari-dcmix or {choose}") from None
    bad = non_finite_tensors(state)
    if bad:
        raise CheckpointError(f"{path} is damaged: {', '.join(bad[:3])} hold non-finite values (NaN or Inf), so the "
                              f"model cannot give meaningful predictions or α; {choose}")
    try:
        model.load_state_dict(state, strict=True)
    except Exception as err:  # noqa: BLE001 - shape/key mismatch or non-tensor values
        raise CheckpointError(f"{path} is damaged (weights do not fit the model: {_first_line(err)}); "
                              f"{choose}") from None
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    model.eval()
    return model, metadata


def _norm(name: str) -> str:
    return str(name).strip().casefold()


def match_channels(model_channels: list[str], plate_channels: list[str]) -> list[int]:
    """Index into ``plate_channels`` for each model channel, matched by name (case-insensitive)."""
    for label, names in (("model", model_channels), ("plate", plate_channels)):
        seen: dict[str, str] = {}
        for name in names:
            if _norm(name) in seen:
                raise CheckpointError(f"{label} has two channels named {seen[_norm(name)]!r} and {name!r}; "
                                      "give every channel a distinct name")
            seen[_norm(name)] = name
    index = {_norm(name): i for i, name in enumerate(plate_channels)}
    wanted = {_norm(name) for name in model_channels}
    missing = [name for name in model_channels if _norm(name) not in index]
    extra = [name for name in plate_channels if _norm(name) not in wanted]
    if missing or extra:
        parts = [f"model expects channels {', '.join(model_channels)}"]
        if missing:
            parts.append(f"plate is missing: {', '.join(missing)}")
        if extra:
            parts.append(f"plate has extra: {', '.join(extra)}")
        parts.append("choose a plate with the same channels or train a new model")
        raise CheckpointError("; ".join(parts))
    return [index[_norm(name)] for name in model_channels]
