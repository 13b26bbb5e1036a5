"""A job's form, from untrusted strings to checked settings, before any image is decoded.

The fields and their checks come from the library's one declaration
(:data:`painterly.settings.SERVER_FIELDS`, parsed by :func:`painterly.settings.settings_from_strings`);
this module adds what only a server limits: size, iterations, scales, total work, style count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from painterly.errors import PainterlyError
from painterly.server.config import ServerSettings
from painterly.settings import (
    SERVER_FIELDS,
    TransferSettings,
    iterations_per_scale,
    scale_sizes,
    settings_from_strings,
)

#: Form fields that are files, not settings (``mask``: one region per style, optional).
FILE_FIELDS = ("content", "style", "mask")
#: Form fields a job may have besides the settings.
EXTRA_FIELDS = ("preset",)
SETTING_NAMES = tuple(f.name for f in SERVER_FIELDS)


def job_work(settings: TransferSettings) -> float:
    """Megapixel-iterations of a run: long side squared times iterations, summed over its scales."""
    sizes = scale_sizes(settings.size, settings.scales, settings.quality)
    iterations = iterations_per_scale(settings.iterations, len(sizes), settings.quality)
    return sum(n * side * side for n, side in zip(iterations, sizes, strict=True)) / 1e6


def parse_job_form(
    values: Mapping[str, str], styles: int, limits: ServerSettings
) -> tuple[TransferSettings, dict[str, Any]]:
    """The job's settings, and the options to record and rebuild them from (JSON-able)."""
    if styles < 1:
        raise PainterlyError("at least one style image is needed (form field 'style')")
    if styles > limits.max_styles:
        raise PainterlyError(f"at most {limits.max_styles} style images, got {styles}")
    preset = values.get("preset")
    given = {key: text for key, text in values.items() if key != "preset"}
    caps = {"size": limits.max_size, "iterations": limits.max_iterations, "scales": limits.max_scales}
    resolved = settings_from_strings(given, preset=preset, caps=caps)  # a value over a cap names it
    if resolved.size > limits.max_size:  # a preset's size
        raise PainterlyError(
            f"size must be at most {limits.max_size} pixels on this server, got {resolved.size}"
        )
    sizes = scale_sizes(resolved.size, resolved.scales, resolved.quality)
    if len(sizes) > limits.max_scales:
        raise PainterlyError(f"scales must be at most {limits.max_scales} on this server, got {len(sizes)}")
    per_scale = max(iterations_per_scale(resolved.iterations, len(sizes), resolved.quality))
    if per_scale > limits.max_iterations:
        raise PainterlyError(f"iterations must be at most {limits.max_iterations} here, got {per_scale}")
    work = job_work(resolved)
    assert limits.max_work is not None
    if work > limits.max_work:
        raise PainterlyError(
            f"this job asks for {work:,.0f} megapixel-iterations (size squared x iterations, summed over "
            f"scales), more than this server's limit of {limits.max_work:,.0f}: use fewer iterations, "
            "fewer scales or a smaller size"
        )
    if resolved.style_blend is not None and len(resolved.style_blend) != styles:
        raise PainterlyError(f"{styles} style image(s) but {len(resolved.style_blend)} blend weight(s)")
    if resolved.style_blend is not None and sum(resolved.style_blend) <= 0:
        raise PainterlyError("style blend weights must not all be zero")
    options: dict[str, Any] = {
        key: _jsonable(getattr(resolved, key)) for key, text in given.items() if text.strip()
    }
    if resolved.preset is not None:
        options["preset"] = resolved.preset
    return resolved, options


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
