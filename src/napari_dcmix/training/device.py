"""Pick the compute device: ``auto`` means CUDA, else Apple MPS, else CPU."""

from __future__ import annotations

import re

import torch

from ..errors import DcmixError

DEVICES = ("auto", "cpu", "cuda", "mps")


def check_device_name(name: str | None) -> str:
    """``name`` lower-cased if it names a device kind (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``)."""
    name = (name or "auto").lower()
    if name not in DEVICES and not re.fullmatch(r"cuda:\d+", name):
        raise DcmixError(f"unknown device '{name}'; choose one of: {', '.join(DEVICES)} or cuda:N (N a GPU number)")
    return name


def resolve_device(name: str = "auto") -> torch.device:
    name = check_device_name(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DcmixError("device 'cuda' was asked for but no CUDA GPU is available here; use --device auto or cpu")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise DcmixError(f"device '{name}' was asked for but this machine has {torch.cuda.device_count()} CUDA "
                         f"GPU(s), numbered from 0; use cuda:0 … cuda:{torch.cuda.device_count() - 1} or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DcmixError("device 'mps' was asked for but Apple MPS is not available here; use --device auto or cpu")
    return torch.device(name)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA (bfloat16 where the GPU has it); full precision elsewhere."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None
