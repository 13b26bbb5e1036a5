"""One style of a multi-style (``cin``) network as a complete single-style network.

A conditional-instance-norm network is a single-style network with one row of norm parameters per
style, so one style's row with all the convolutions paints exactly what the multi-style network
paints for that style (to float rounding). Used by ``painterly distill --teacher zoo --style NAME``
and ``scripts/extract_style.py``.
"""

from __future__ import annotations

from typing import Any

from painterly.errors import PainterlyError
from painterly.feedforward.conditional import ConditionalTransformerNet
from painterly.feedforward.network import TransformerNet
from painterly.feedforward.warm_start import warm_start

#: Keys of a multi-style model's metadata that do not describe a single-style one (the network's own
#: shape is written from the network).
_MULTI_ONLY = ("styles", "style_sources", "architecture", "name", "width", "upsample", "residual_blocks")


def single_style(
    net: ConditionalTransformerNet, meta: dict[str, Any], style: str, source: str = "this model"
) -> tuple[TransformerNet, dict[str, Any]]:
    """``style`` of ``net`` as a :class:`TransformerNet`, with single-style metadata made from ``meta``.

    The metadata keeps the source's loss and training record, names the style's painting (file,
    SHA-256, size) and drops what only a multi-style model has. ``source`` names the model in the
    error for a style it does not have.
    """
    if style not in net.styles:
        raise PainterlyError(f"{source} has no style {style!r} (its styles: {', '.join(net.styles)})")
    single = TransformerNet(net.width, net.residual_blocks, upsample=net.upsample)
    warm_start(single, net, style)
    source_of = {s.get("name"): s for s in meta.get("style_sources", [])}.get(style, {})
    metadata = {key: value for key, value in meta.items() if key not in _MULTI_ONLY}
    metadata.update(
        name=style,
        style=source_of.get("file", f"{style}.jpg"),
        style_sha256=source_of.get("sha256"),
        style_image_size=source_of.get("image_size"),
    )
    if "style_size" in source_of:
        metadata["style_size"] = source_of["style_size"]
    return single, metadata
