"""Choosing the compute device and the precision that is fastest on it."""

from __future__ import annotations

import torch

from painterly import memory
from painterly.errors import PainterlyError, did_you_mean
from painterly.settings import DEVICES as DEVICES  # re-exported
from painterly.settings import PRECISIONS, check_device_name


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` takes CUDA, then Apple MPS, then the CPU. ``cuda:1`` style names are accepted."""
    base = check_device_name(name).split(":")[0]
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise PainterlyError(
            "CUDA was asked for but is not available (this torch build or machine has no GPU)"
        )
    if base == "mps" and not mps_ok:
        raise PainterlyError(
            "MPS was asked for but is not available (needs Apple silicon and a torch build for it)"
        )
    try:
        return torch.device(name)
    except RuntimeError:
        raise PainterlyError(f"unknown device {name[:60]!r}") from None


def cpu_has_fast_bf16() -> bool:
    """True where oneDNN runs bf16 convolutions natively (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the loss network, or None for plain float32.

    ``auto``: bf16 on a CPU with native bf16 (measured 1.9x faster for VGG19 at 512 px, with
    losses in float32) and on CUDA GPUs that support it, float32 elsewhere. fp16 must be asked for:
    Caffe-scale activations come close to its range.
    """
    if name not in PRECISIONS:
        raise PainterlyError(f"unknown precision {name!r}{did_you_mean(name, PRECISIONS)}")
    if name == "auto":
        if device.type == "cpu":
            return torch.bfloat16 if cpu_has_fast_bf16() else None
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory of ``device``: for the CPU what a run may count on (the machine's physical
    memory, or less under an address-space limit: :func:`painterly.memory.available_memory`, as the
    checks before a run count it), the GPU's own for CUDA; None where unknown (MPS shares the
    machine's memory in ways torch does not report)."""
    if device.type == "cpu":
        return memory.available_memory()
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    return None
