"""How much memory a run may use here, for the checks made before any work. Torch-free.

The smaller of the machine's physical memory and what the address-space limit (``ulimit -v``,
``RLIMIT_AS``) still leaves this process: under a 6 GiB limit an 8192 px video frame was found too
large only when onnxruntime failed to allocate, 13 s into the run.
"""

from __future__ import annotations

import os
import resource


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _mapped_bytes() -> int:
    """The address space this process already uses (VmSize), 0 when unknown."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def address_space_left() -> int | None:
    """Bytes the address-space limit still allows, or None without a limit."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ValueError, OSError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    return max(0, soft - _mapped_bytes())


def available_memory() -> int | None:
    """Bytes a run may count on here (None when nothing is known)."""
    known = [value for value in (physical_memory(), address_space_left()) if value is not None]
    return min(known) if known else None
