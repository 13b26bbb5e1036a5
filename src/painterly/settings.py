"""The settings of an image optimization run, each declared once: type, default, choices, help,
group, range, CLI flags and whether the web server accepts it.

The CLI's options (``painterly transfer``), the server's form fields and ``/api/config``, and
:func:`validate` are all generated from :data:`SETTING_FIELDS`, which is read from the metadata of
:class:`TransferSettings`' fields. Adding a setting is one field here (and its use in the library).

Kept free of torch so that the CLI can build its parser (and show defaults) without loading it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from painterly.color import PRESERVE_COLORS
from painterly.errors import PainterlyError, check_weight, did_you_mean
from painterly.numbers import check_range, parse_decimal, parse_whole
from painterly.presets import PRESETS
from painterly.presets import preset as preset_settings
from painterly.vgg.layers import ARCHITECTURES, CONVENTIONS, layer_names

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
POOLINGS = ("max", "avg")
TV_FORMS = ("squared", "power1.25")
LOSS_CONVENTIONS = ("classic", "keras")
#: Device kinds; ``cuda:N`` (and ``mps:N``, ``cpu:0``) name one device of a kind.
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: How much work a run spends for its result (:data:`QUALITY_PLANS`); ``normal`` is the default.
QUALITIES = ("draft", "normal", "best")
#: The groups of ``--help`` and of the README's option tables, in order.
GROUPS = ("basic", "loss", "layers", "optimization", "output-and-other")
#: The range ``torch.manual_seed`` accepts.
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1

#: The default content weight: 10x the Lua neural-style's 5 (the ``classic`` preset keeps 5). Issue 9 set
#: 25 for 20/20/40 iterations at 256/362/512 px (style_ratio 0.024, content_ratio 0.282 on the shared
#: yardstick, targets 0.15 and 0.30). The shorter default plan of issue 24 (30/20/15 at 128/256/512 px,
#: see QUALITY_PLANS) ends tubingen + starry_night at 0.047 / 0.329 with 25, over the content target;
#: with 50 at 0.063 / 0.269 (golden_gate + the_scream 0.113 / 0.152, + the_wave 0.106 / 0.190).
DEFAULT_CONTENT_WEIGHT = 50.0
#: Above this output size (long side, px) the default is to paint coarse to fine.
MULTISCALE_ABOVE = 400
#: Largest output long side accepted at all; the memory check (:func:`check_memory`) is stricter.
MAX_SIZE = 16384
#: Largest loss weight (and style blend weight) accepted: far above any useful one, and low enough
#: that a weighted loss stays finite in float32 (``style_weight=1e308`` made every loss infinite).
MAX_WEIGHT = 1e15
#: Longest time limit accepted, in seconds (some 30 years; ``1e308`` overflowed the schedule's sums).
MAX_TIME_LIMIT = 1e9


@dataclass(frozen=True)
class SettingField:
    """The declaration of one setting: everything the CLI, the server and validation need.

    ``kind`` is ``int``, ``float``, ``str``, ``bool``, ``layers`` (``NAME[:WEIGHT],...``) or
    ``floats`` (``W,W,...``). ``choices`` restrict a ``str`` setting, except with ``open_choices``
    (``init`` also takes an image path, in the CLI and the library only). ``minimum`` and ``maximum``
    are inclusive unless ``exclusive_minimum``. ``optional``: ``None`` is a valid value (meaning
    "automatic"). ``flags`` are the CLI's option strings (empty: not on the CLI). ``server``: the
    web server accepts it from a form.
    """

    name: str
    default: Any
    kind: str
    help: str
    group: str
    choices: tuple[str, ...] | None = None
    open_choices: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    optional: bool = False
    flags: tuple[str, ...] = ()
    metavar: str | None = None
    default_help: str | None = None
    server: bool = False

    @property
    def label(self) -> str:
        """How messages name it: ``style weight``."""
        return self.name.replace("_", " ")

    def shown_default(self) -> str:
        """The default as ``--help`` and the README show it."""
        if self.default_help is not None:
            return self.default_help
        value = self.default
        if isinstance(value, tuple | list):
            return ",".join(str(v) for v in value)
        return str(value)


KINDS = ("int", "float", "str", "bool", "layers", "floats")


def setting(
    default: Any,
    kind: str,
    help: str,  # noqa: A002 - the word argparse uses
    group: str,
    *,
    flags: Sequence[str] | None = None,
    **extra: Any,
) -> Any:
    """A dataclass field carrying its :class:`SettingField` declaration in its metadata."""
    assert kind in KINDS and group in GROUPS, (kind, group)
    declaration = {"kind": kind, "help": help, "group": group, "flags": flags, **extra}
    return dataclasses.field(default=default, metadata={"painterly": declaration})


_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass
class TransferSettings:
    """Every setting of an image optimization run. Defaults are the ``classic`` preset except the
    content weight (:data:`DEFAULT_CONTENT_WEIGHT` instead of the Lua neural-style's 5).

    Loss weights follow the Lua neural-style's units (see :mod:`painterly.losses`).
    """

    size: int = setting(
        512,
        "int",
        "long side of the output in px",
        "basic",
        minimum=16,
        maximum=MAX_SIZE,
        server=True,
        metavar="PX",
    )
    iterations: int | None = setting(
        None,
        "int",
        "iterations per scale",
        "basic",
        minimum=1,
        maximum=1_000_000,
        optional=True,
        default_help="set by --quality (normal: 30, 20, 15 from 128 px up to 512; 300 at one scale)",
        server=True,
        metavar="N",
    )
    time_limit: float | None = setting(
        None,
        "float",
        "paint within about this many seconds: scales and iterations are planned from the measured "
        "speed, and the best image so far is the result when time is up",
        "basic",
        minimum=0,
        maximum=MAX_TIME_LIMIT,
        exclusive_minimum=True,
        optional=True,
        default_help="none",
        server=True,
        metavar="SECONDS",
    )
    quality: str = setting(
        "normal",
        "str",
        "how much work to spend: draft (a quick look, about a third of normal's time), normal, or "
        "best (each scale runs until its loss stops improving)",
        "basic",
        choices=QUALITIES,
        server=True,
    )
    preset: str | None = setting(
        None,
        "str",
        "named settings (explicit options override it)",
        "basic",
        choices=tuple(sorted(PRESETS)),
        optional=True,
        default_help="classic, with content weight 50",
        metavar="NAME",
    )
    content_weight: float = setting(
        DEFAULT_CONTENT_WEIGHT,
        "float",
        "content loss weight",
        "loss",
        minimum=0,
        maximum=MAX_WEIGHT,
        server=True,
    )
    style_weight: float = setting(
        100.0, "float", "style loss weight", "loss", minimum=0, maximum=MAX_WEIGHT, server=True
    )
    tv_weight: float = setting(
        1e-3, "float", "total-variation weight", "loss", minimum=0, maximum=MAX_WEIGHT, server=True
    )
    tv_form: str = setting("squared", "str", "TV loss form", "loss", choices=TV_FORMS)
    loss_convention: str = setting(
        "classic",
        "str",
        "loss formulas: the Lua neural-style's or the Keras example's",
        "loss",
        choices=LOSS_CONVENTIONS,
        flags=(),
    )
    style_blend: Sequence[float] | None = setting(
        None,
        "floats",
        "comma-separated blend weights, one per --style",
        "loss",
        minimum=0,
        maximum=MAX_WEIGHT,
        optional=True,
        default_help="equal",
        server=True,
        metavar="W,W,...",
    )
    keep_weight: float = setting(
        10.0,
        "float",
        "content weight inside the keep mask (--keep), as a multiple of the content weight elsewhere",
        "loss",
        minimum=0,
        maximum=MAX_WEIGHT,
    )
    style_scale: float = setting(
        1.0,
        "float",
        "style image size relative to the output",
        "loss",
        minimum=0,
        maximum=16,
        exclusive_minimum=True,
    )
    content_layers: Sequence[str] | Mapping[str, float] = setting(
        ("relu4_2",),
        "layers",
        "comma-separated, optionally NAME:WEIGHT",
        "layers",
    )
    style_layers: Sequence[str] | Mapping[str, float] = setting(
        _STYLE_LAYERS,
        "layers",
        "comma-separated, optionally NAME:WEIGHT",
        "layers",
    )
    network: str = setting(
        "vgg19", "str", "loss network", "layers", choices=tuple(sorted(ARCHITECTURES))[::-1]
    )
    weights: str | None = setting(
        None,
        "str",
        "your own VGG weights (torchvision layout, .pth or .safetensors; expects "
        "torchvision's RGB normalization unless --weights-convention caffe)",
        "layers",
        optional=True,
        default_help="packaged",
        metavar="FILE",
    )
    weights_convention: str | None = setting(
        None,
        "str",
        "input convention of --weights",
        "layers",
        choices=CONVENTIONS,
        optional=True,
        default_help="torchvision",
    )
    pooling: str = setting("max", "str", "pooling layers", "layers", choices=POOLINGS)
    optimizer: str = setting("lbfgs", "str", "optimizer", "optimization", choices=OPTIMIZERS, server=True)
    learning_rate: float | None = setting(
        None,
        "float",
        "step size (Adam: pixels in 0-1 units)",
        "optimization",
        minimum=0,
        exclusive_minimum=True,
        optional=True,
        default_help="1 for L-BFGS, 0.02 for Adam",
    )
    lbfgs_history: int = setting(
        50,
        "int",
        "L-BFGS history length",
        "optimization",
        minimum=1,
        maximum=1000,
        flags=(),
    )
    init: str = setting(
        "content",
        "str",
        "starting image: content, noise, style (or, in the CLI and the library, an image path)",
        "optimization",
        choices=INITS,
        open_choices=True,
        server=True,
    )
    seed: int = setting(
        0,
        "int",
        "random seed; same seed and settings, same pixels",
        "optimization",
        minimum=SEED_MIN,
        maximum=SEED_MAX,
        server=True,
    )
    scales: int | None = setting(
        None,
        "int",
        "coarse-to-fine scales",
        "optimization",
        minimum=1,
        maximum=16,
        optional=True,
        default_help="1 up to 400 px, else steps of 2 from 128 px",
        server=True,
        metavar="N",
    )
    square: bool = setting(False, "bool", "paint a square image (the Keras example's)", "output-and-other")
    preserve_colors: str = setting(
        "none",
        "str",
        "keep the photo's colours",
        "output-and-other",
        choices=PRESERVE_COLORS,
        server=True,
    )
    tile_size: int | None = setting(
        None,
        "int",
        "evaluate the loss in tiles of this side (px) so that memory is bounded by a tile, not by "
        "the picture (same result, about twice the time or more); 0: never",
        "output-and-other",
        minimum=0,
        maximum=MAX_SIZE,
        optional=True,
        default_help="when the whole image would not fit in memory",
        metavar="PX",
    )
    device: str = setting(
        "auto",
        "str",
        "auto, cpu, cuda, cuda:N or mps",
        "output-and-other",
        choices=DEVICES,
        open_choices=True,
    )
    precision: str = setting(
        "auto",
        "str",
        "loss network precision (auto: bf16 on CPUs with native bf16)",
        "output-and-other",
        choices=PRECISIONS,
    )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)


def _declarations() -> tuple[SettingField, ...]:
    out = []
    for f in dataclasses.fields(TransferSettings):
        meta = dict(f.metadata["painterly"])
        flags = meta.pop("flags")
        if flags is None:
            flags = ("--" + f.name.replace("_", "-"),)
        out.append(SettingField(name=f.name, default=f.default, flags=tuple(flags), **meta))
    return tuple(out)


#: Every setting, in declaration order.
SETTING_FIELDS: tuple[SettingField, ...] = _declarations()
FIELDS_BY_NAME: dict[str, SettingField] = {f.name: f for f in SETTING_FIELDS}
#: The settings a web form may set.
SERVER_FIELDS: tuple[SettingField, ...] = tuple(f for f in SETTING_FIELDS if f.server)


def _shorten(text: object, limit: int = 60) -> str:
    """A user's value, safe to echo in one line: control characters escaped, long text cut."""
    shown = repr(text) if not isinstance(text, str) else repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def layer_weights(layers: Sequence[str] | Mapping[str, float], what: str) -> dict[str, float]:
    """A list of layers gets equal weights of 1; a mapping is taken as per-layer weights."""
    if isinstance(layers, str):
        layers = [layers]
    if isinstance(layers, Mapping):
        if not layers:
            raise PainterlyError(f"need at least one {what} layer")
        return {name: check_weight(f"{what} weight of layer {name}", value) for name, value in layers.items()}
    if not layers:
        raise PainterlyError(f"need at least one {what} layer")
    return {name: 1.0 for name in layers}


def parse_layers(text: str, what: str) -> list[str] | dict[str, float]:
    """``relu1_1,relu2_1`` (equal weights) or ``relu1_1:0.5,relu2_1`` (per-layer weights)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise PainterlyError(f"{what} layers are empty")
    if any(":" in item for item in items):
        out = {}
        for item in items:
            name, _, weight = item.partition(":")
            label = f"weight of {what} layer {_shorten(name)}"
            out[name.strip()] = (
                parse_decimal(weight, label, minimum=0, maximum=MAX_WEIGHT) if weight.strip() else 1.0
            )
        return out
    return items


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_value(field: SettingField, text: str, maximum: float | None = None) -> Any:
    """One setting from a string (a CLI argument or a form field), numbers checked against their
    range here (``maximum``: a caller's stricter cap, such as a server's, named in the message); the
    rest is checked by :func:`validate` later."""
    text = text.strip()
    high = field.maximum if maximum is None else min(maximum, field.maximum or maximum)
    if field.kind == "int":
        low = None if field.minimum is None else int(field.minimum)
        return parse_whole(text, field.label, minimum=low, maximum=None if high is None else int(high))
    if field.kind == "float":
        return parse_decimal(
            text,
            field.label,
            minimum=field.minimum,
            maximum=high,
            exclusive_minimum=field.exclusive_minimum,
        )
    if field.kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise PainterlyError(f"{field.label} must be true or false, got {_shorten(text)}")
    if field.kind == "layers":
        return parse_layers(text, field.name.split("_")[0])
    if field.kind == "floats":
        items = text.split(",")
        label = f"{field.label} weight"
        return [parse_decimal(item, label, minimum=field.minimum, maximum=high) for item in items]
    return text


def _number(label: str, value: object) -> float:
    if isinstance(value, bool):
        raise PainterlyError(f"{label} must be a number, got {_shorten(value)}")
    if isinstance(value, str):  # the library given text: the same rules as the CLI and the forms
        return parse_decimal(value, label)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise PainterlyError(f"{label} must be a number, got {_shorten(value)}") from None
    if not math.isfinite(number):
        raise PainterlyError(f"{label} must be finite, got {_shorten(value)}")
    return number


def make_settings(preset: str | None = None, **options: Any) -> TransferSettings:
    """Defaults, then the preset, then explicit ``options`` (which always win). ``None`` means unset."""
    values: dict[str, Any] = {}
    if preset is not None:
        values.update(preset_settings(preset))
        values["preset"] = preset
    for key, value in options.items():
        if key not in FIELDS_BY_NAME:
            raise PainterlyError(f"unknown setting {_shorten(key)}{did_you_mean(key, FIELDS_BY_NAME)}")
        if value is not None:
            values[key] = value
    settings = TransferSettings(**values)
    validate(settings)
    return settings


def settings_from_strings(
    values: Mapping[str, str], *, preset: str | None = None, caps: Mapping[str, float] | None = None
) -> TransferSettings:
    """Settings from untrusted strings (an HTML form): only the server's fields, all validated.

    Empty strings mean "not given". ``caps`` lowers fields' maximums (a server's limits, e.g.
    ``{"size": 1024}``), so that a value over them is refused naming the cap that applies. Unknown
    names (and settings the server does not expose) get a "did you mean"; every message is one short
    line.
    """
    allowed = {f.name: f for f in SERVER_FIELDS}
    options: dict[str, Any] = {}
    for key, text in values.items():
        field = allowed.get(key)
        if field is None:
            raise PainterlyError(f"unknown setting {_shorten(key)}{did_you_mean(str(key), allowed)}")
        if not isinstance(text, str):
            raise PainterlyError(f"{field.label} must be given as text")
        if text.strip() == "":
            continue
        value = parse_value(field, text, (caps or {}).get(key))
        if field.choices is not None and value not in field.choices:  # strict here, even for init
            _choice(field, value)
        options[key] = value
    if preset is not None and preset.strip() == "":
        preset = None
    if preset is not None and preset not in PRESETS:
        raise PainterlyError(
            f"unknown preset {_shorten(preset)}{did_you_mean(preset, PRESETS)}; "
            f"choose from {', '.join(sorted(PRESETS))}"
        )
    return make_settings(preset, **options)


def config_schema() -> list[dict[str, Any]]:
    """JSON-able description of the settings the server exposes, for ``/api/config`` and the page."""
    return [
        {
            "name": f.name,
            "kind": f.kind,
            "default": list(f.default) if isinstance(f.default, tuple) else f.default,
            "choices": list(f.choices) if f.choices is not None else None,
            "help": f.help,
            "group": f.group,
            "minimum": f.minimum,
            "maximum": f.maximum,
            "exclusive_minimum": f.exclusive_minimum,
            "optional": f.optional,
        }
        for f in SERVER_FIELDS
    ]


def _choice(field: SettingField, value: object) -> None:
    assert field.choices is not None
    text = str(value)
    raise PainterlyError(
        f"unknown {field.label} {_shorten(value)}{did_you_mean(text, field.choices)}; "
        f"choose from {', '.join(field.choices)}"
    )


def _check_range(field: SettingField, value: float) -> None:
    check_range(field.label, value, field.minimum, field.maximum, exclusive_minimum=field.exclusive_minimum)


def _check_field(field: SettingField, value: Any) -> None:
    label = field.label
    if field.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise PainterlyError(f"{label} must be a whole number, got {_shorten(value)}")
        _check_range(field, value)
    elif field.kind == "float":
        _check_range(field, _number(label, value))
    elif field.kind == "bool":
        if not isinstance(value, bool):
            raise PainterlyError(f"{label} must be true or false, got {_shorten(value)}")
    elif field.kind == "str":
        if not isinstance(value, str):
            if field.open_choices and isinstance(value, Image.Image):
                return
            raise PainterlyError(f"{label} must be text, got {_shorten(value)}")
        if field.choices is not None and value not in field.choices and not field.open_choices:
            _choice(field, value)
    elif field.kind == "layers":
        layer_weights(value, field.name.split("_")[0])
    elif field.kind == "floats":
        if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
            raise PainterlyError(f"{label} must be a list of numbers, got {_shorten(value)}")
        for item in value:
            _check_range(field, _number(f"{label} weight", item))


def check_device_name(name: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``mps``, optionally ``:N``; availability is checked with torch later."""
    base, colon, index = name.partition(":")
    if base not in DEVICES:
        raise PainterlyError(f"unknown device {_shorten(name)}{did_you_mean(base, DEVICES)}")
    if colon and (base == "auto" or not re.fullmatch(r"[0-9]{1,4}", index)):
        raise PainterlyError(f"device {_shorten(name)} should be {base} or {base}:N with N a device number")
    return name


def validate(s: TransferSettings) -> None:
    """Check every setting up front, so that bad input fails before any image is decoded."""
    for field in SETTING_FIELDS:
        value = getattr(s, field.name)
        if value is None and field.optional:
            continue
        _check_field(field, value)
    check_device_name(s.device)
    names = layer_names(s.network)
    for what, layers in (("content", s.content_layers), ("style", s.style_layers)):
        for layer in layer_weights(layers, what):
            if layer not in names:
                raise PainterlyError(
                    f"unknown {what} layer {_shorten(layer)} for {s.network}{did_you_mean(str(layer), names)}"
                )


#: Bytes of memory one output pixel needs at most (VGG19 activations and their gradients up to
#: relu5_1 in float32, the image, its gradient and the L-BFGS history of 50 pairs), rounded up from
#: the measured growth of peak RSS between 256 and 512 px runs.
BYTES_PER_PIXEL = 4096


def estimated_bytes(width: int, height: int) -> int:
    """Memory a run painting a ``width`` x ``height`` image needs, beyond the loss network."""
    return width * height * BYTES_PER_PIXEL


#: The core of a loss-evaluation tile (px, a side) when tiling is automatic (``tile_size`` None).
DEFAULT_TILE_SIZE = 512
#: The widest halo a tile needs (VGG19 to relu5_1: 80 px; see :mod:`painterly.losses.tiled`).
TILE_HALO = 80
#: Tiling is automatic when the whole-image estimate exceeds this share of the memory: the rest is
#: left to the system and to whatever else runs.
TILE_ABOVE_SHARE = 0.75
#: Bytes per output pixel of a tiled run besides one tile's graph and the L-BFGS history: about 16
#: image-sized float32 vectors (image, gradient, best image, L-BFGS and line-search vectors, the
#: gradient being accumulated) and the content target at relu4_2 (512 channels at stride 8: 32 B).
TILED_BYTES_PER_PIXEL = 256
#: The L-BFGS history of a tiled run is cut to as many pairs as fit in this (at least 3 pairs): 50
#: pairs of a 3840x2160 image would take 10 GB.
TILED_HISTORY_BYTES = 3 * 2**30


def estimated_tiled_bytes(width: int, height: int, tile_size: int | None = None) -> int:
    """Memory a tiled run needs: one tile's graph, the image-sized vectors and the L-BFGS history."""
    region = (tile_size or DEFAULT_TILE_SIZE) + 2 * TILE_HALO
    pixels = width * height
    history = max(3 * 2 * 12 * pixels, min(TILED_HISTORY_BYTES, 50 * 2 * 12 * pixels))
    return region * region * BYTES_PER_PIXEL + pixels * TILED_BYTES_PER_PIXEL + history


def needs_tiles(width: int, height: int, available: int | None, tile_size: int | None) -> bool:
    """Whether a run evaluates its loss in tiles: asked for (``tile_size`` smaller than the image), or
    automatic (``None``) when the whole image would take more than :data:`TILE_ABOVE_SHARE` of
    ``available`` bytes; never with ``tile_size`` 0."""
    if tile_size == 0:
        return False
    if tile_size is not None:
        return max(width, height) > tile_size
    return available is not None and estimated_bytes(width, height) > TILE_ABOVE_SHARE * available


def check_memory(
    width: int,
    height: int,
    available: int | None,
    bytes_per_pixel: int = BYTES_PER_PIXEL,
    what: str = "image",
    tile_size: int | None = None,
    size_name: str = "--size",
) -> None:
    """Refuse a run that cannot fit in ``available`` bytes, before any work (one clear line).

    ``bytes_per_pixel``: what the method needs per output pixel (video by a trained network needs
    far less than image optimization). An image optimization that may evaluate its loss in tiles
    (``tile_size`` not 0, :func:`needs_tiles`) is measured by its tiled estimate; other methods
    pass ``tile_size=0``. ``size_name``: what the refusal calls the
    size to lower (the CLI's ``--size``; the library's ``size``)."""
    if available is None:
        return

    def needs(w: int, h: int) -> int:
        whole = w * h * bytes_per_pixel
        if tile_size != 0 and whole > TILE_ABOVE_SHARE * available:
            return estimated_tiled_bytes(w, h, tile_size)
        return whole

    need = needs(width, height)
    if need > available:
        side = max(width, height)
        # the largest long side that fits, searched: the tiled estimate has fixed parts (a tile's
        # graph, the L-BFGS history), so it does not scale with the pixels
        low, high = 16, side
        while high - low > 1:
            mid = (low + high) // 2
            scale = mid / side
            fit = needs(max(1, round(width * scale)), max(1, round(height * scale))) <= available
            low, high = (mid, high) if fit else (low, mid)
        fits = low
        raise PainterlyError(
            f"a {width}x{height} {what} needs about {need / 2**30:.1f} GiB of memory, more than the "
            f"{available / 2**30:.1f} GiB here; try {size_name} {fits} or less"
        )


def check_transfer_memory(
    width: int,
    height: int,
    s: TransferSettings,
    available: int | None,
    device_type: str,
    *,
    whole: bool = False,
    size_name: str = "size",
) -> None:
    """Refuse an image optimization of a ``width`` x ``height`` photo whose output at ``s``'s size
    cannot fit in ``available`` bytes (:func:`check_memory`). ``device_type``: the device the run
    resolves to (``cpu``, ``cuda``, ``mps``). A CUDA GPU's memory is known to torch alone, which
    reports its own out-of-memory error, so nothing is checked there; on MPS (memory shared with
    the host, and the painter does not tile by itself there) the whole-image estimate applies
    unless ``tile_size`` asks for tiles.
    ``whole``: the run cannot be evaluated in tiles (style masks or a keep mask: their guided
    terms need the whole image), so the whole-image estimate applies whatever ``tile_size`` says."""
    from painterly.images import long_side_size

    if device_type not in ("cpu", "mps"):
        return
    out_width, out_height = (s.size, s.size) if s.square else long_side_size(width, height, s.size)
    automatic_tiles = device_type == "cpu"  # where the painter knows the memory to tile by itself
    tile_size = 0 if whole or (s.tile_size is None and not automatic_tiles) else s.tile_size
    check_memory(out_width, out_height, available, tile_size=tile_size, size_name=size_name)


@dataclass(frozen=True)
class QualityPlan:
    """How one ``--quality`` level spends loss evaluations (see docs/speed.md for the measurements).

    Coarse to fine, the pyramid starts at ``first_scale`` px and doubles up to the output size; the
    coarsest scale gets ``first_iterations``, the other coarse scales ``coarse_iterations``, the output
    size ``last_iterations`` (0: not painted at that size, the coarser result with the photo's detail
    restored is the picture); a single-scale run ``single_iterations``. Each scale also ends early when
    its best loss fell by less than ``tolerance`` of itself over the last ``window`` iterations (not
    before ``min_iterations``). ``matched_start``: the first scale starts from the photo with the
    painting's colours (histogram-matched); ``detail_start``: each later scale starts from the
    previous result upsampled plus the photo's detail that the previous scale could not hold.
    """

    first_scale: int
    first_iterations: int
    coarse_iterations: int
    last_iterations: int
    single_iterations: int
    window: int
    tolerance: float
    min_iterations: int
    matched_start: bool = True
    detail_start: bool = True

    def iterations(self, n_scales: int) -> list[int]:
        if n_scales == 1:
            return [self.single_iterations]
        middle = [self.coarse_iterations] * (n_scales - 2)
        return [self.first_iterations, *middle, self.last_iterations]


#: The plans of :data:`QUALITIES`. ``normal`` (the default) ends the default 512 px run of tubingen +
#: starry_night at the shared yardstick's targets in about half the work of the former default
#: (256 -> 362 -> 512 px, 20 + 20 + 40 iterations); ``draft`` spends about a third of ``normal``'s
#: time, two iterations at the output size (none left it a photo with a painted wash: style_ratio 0.51);
#: ``best`` runs every scale until it stops improving (high caps, a tight plateau).
QUALITY_PLANS: dict[str, QualityPlan] = {
    "draft": QualityPlan(128, 20, 10, 2, 100, window=5, tolerance=0.01, min_iterations=5),
    "normal": QualityPlan(128, 30, 20, 15, 300, window=5, tolerance=0.005, min_iterations=10),
    "best": QualityPlan(128, 100, 100, 300, 1000, window=10, tolerance=0.002, min_iterations=30),
}


def quality_plan(quality: str) -> QualityPlan:
    if quality not in QUALITY_PLANS:
        raise PainterlyError(
            f"unknown quality {_shorten(quality)}{did_you_mean(quality, QUALITIES)}; "
            f"choose from {', '.join(QUALITIES)}"
        )
    return QUALITY_PLANS[quality]


def scale_sizes(size: int, scales: int | None, quality: str = "normal") -> list[int]:
    """Long sides of the coarse-to-fine pyramid, smallest first, ending at ``size``: each scale half
    the next (never below 16 px).

    ``None`` picks the count automatically: one scale up to :data:`MULTISCALE_ABOVE` px, otherwise as
    many as keep the smallest at or above the quality plan's first scale (128 px: 128, 256, 512 for
    the default 512 px).
    """
    if scales is None:
        if size <= MULTISCALE_ABOVE:
            return [size]
        scales = 1 + math.floor(math.log2(size / quality_plan(quality).first_scale) + 1e-9)
    return [max(16, round(size / 2 ** (scales - 1 - i))) for i in range(scales - 1)] + [size]


def iterations_per_scale(iterations: int | None, n_scales: int, quality: str = "normal") -> list[int]:
    """Iterations at each scale: ``iterations`` everywhere, or the quality plan's if None."""
    if iterations is not None:
        return [iterations] * n_scales
    return quality_plan(quality).iterations(n_scales)
