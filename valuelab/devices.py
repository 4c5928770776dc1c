"""Torch devices named by the user (``--device``), checked before any work starts so that a missing GPU is one
clear line instead of a traceback from deep inside a fit or a model load."""

from __future__ import annotations

import torch

from valuelab.errors import DeviceError


def torch_device(name: str | torch.device) -> torch.device:
    """``name`` as a torch device, or a DeviceError saying why this machine cannot use it."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {str(name)!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise DeviceError(f"device {str(name)!r} asked for, but torch {torch.__version__} ({built}) sees no "
                              "CUDA GPU on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {str(name)!r} asked for, but this machine has "
                              f"{torch.cuda.device_count()} CUDA GPU(s)")
    elif device.type not in ("cpu", "mps"):
        raise DeviceError(f"device {str(name)!r} is not supported; use cpu or cuda")
    return device
