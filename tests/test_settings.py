"""The settings declaration: one place for every setting's type, default, range, CLI and server form."""

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from painterly.errors import PainterlyError
from painterly.settings import (
    SEED_MAX,
    SETTING_FIELDS,
    TransferSettings,
    check_memory,
    config_schema,
    make_settings,
    settings_from_strings,
)


def test_every_setting_is_declared_once_with_its_default() -> None:
    names = [f.name for f in SETTING_FIELDS]
    assert names == [f.name for f in dataclasses.fields(TransferSettings)]
    defaults = TransferSettings()
    for field in SETTING_FIELDS:
        assert getattr(defaults, field.name) == field.default, field.name
        assert field.help and field.group in ("basic", "loss", "layers", "optimization", "output-and-other")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tv_form": "squarred"}, "did you mean 'squared'"),
        ({"precision": "fp33"}, "unknown precision 'fp33'"),
        ({"loss_convention": "kears"}, "did you mean 'keras'"),
        ({"device": "cpu:abc"}, "device 'cpu:abc'"),
        ({"device": "gpu"}, "unknown device 'gpu'"),
        ({"seed": 10**30}, "seed must be at most"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"style_scale": float("nan")}, "must be finite"),
        ({"style_scale": 0}, "style scale must be positive"),
        ({"content_weight": float("inf")}, "must be finite"),
        ({"size": 100_000}, "size must be at most"),
        ({"size": 8}, "size must be at least 16"),
        ({"iterations": True}, "iterations must be a whole number"),
        ({"square": "yes"}, "square must be true or false"),
        ({"style_blend": [1, float("nan")]}, "must be finite"),
        ({"lbfgs_history": 0}, "lbfgs history must be at least 1"),
        ({"weights_convention": "cafe"}, "did you mean 'caffe'"),
        ({"optimizer": "sgd"}, "unknown optimizer 'sgd'"),
    ],
)
def test_validate_checks_every_field(options: dict, message: str) -> None:
    with pytest.raises(PainterlyError, match=message):
        make_settings(**options)


def test_seed_range_is_what_torch_accepts() -> None:
    import torch

    assert make_settings(seed=SEED_MAX).seed == SEED_MAX
    torch.manual_seed(SEED_MAX)  # the bound is real: torch takes it
    with pytest.raises(PainterlyError):
        make_settings(seed=SEED_MAX + 1)


def test_settings_from_strings_parses_a_form() -> None:
    s = settings_from_strings(
        {
            "size": "64",
            "style_weight": "1e3",
            "style_blend": "2, 1",
            "seed": "-3",
            "init": "noise",
            "scales": "",
        },
        preset="keras-example",
    )
    assert (s.size, s.style_weight, list(s.style_blend or []), s.seed, s.init) == (
        64,
        1000.0,
        [2.0, 1.0],
        -3,
        "noise",
    )
    assert s.network == "vgg16" and s.scales == 1  # the preset, where the form left a field empty


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"styel_weight": "1"}, "unknown setting 'styel_weight' \\(did you mean 'style_weight'\\?\\)"),
        ({"device": "cuda"}, "unknown setting 'device'"),  # not something a web form may choose
        ({"weights": "/etc/passwd"}, "unknown setting 'weights'"),
        ({"init": "/etc/passwd"}, "unknown init"),  # paths only from the CLI and the library
        ({"seed": "1" * 31}, "seed must be at most"),
        ({"seed": "1" * 5000}, "seed must be a whole number"),
        ({"size": "big"}, "size must be a whole number"),
        ({"tv_weight": "nan"}, "must be finite"),
        ({"preserve_colors": "lumi"}, "did you mean 'luminance'"),
    ],
)
def test_settings_from_strings_rejects_bad_values(values: dict, message: str) -> None:
    with pytest.raises(PainterlyError, match=message):
        settings_from_strings(values)


def test_messages_are_short_and_one_line() -> None:
    with pytest.raises(PainterlyError) as info:
        settings_from_strings({"optimizer": "x\n" * 100_000})
    text = str(info.value)
    assert "\n" not in text and len(text) < 200
    with pytest.raises(PainterlyError, match="unknown preset 'clasic'"):
        settings_from_strings({}, preset="clasic")


def test_config_schema_describes_the_server_fields() -> None:
    schema = config_schema()
    json.dumps(schema)
    by_name = {entry["name"]: entry for entry in schema}
    assert {"size", "seed", "style_weight", "preserve_colors", "init"} <= set(by_name)
    assert "device" not in by_name and "weights" not in by_name
    assert by_name["size"]["default"] == TransferSettings().size and by_name["size"]["minimum"] == 16
    assert by_name["init"]["choices"] == ["content", "noise", "style"]
    assert by_name["style_weight"]["group"] == "loss" and by_name["style_weight"]["kind"] == "float"


def test_memory_check_names_a_size_that_fits() -> None:
    check_memory(512, 384, 8 * 2**30)
    with pytest.raises(PainterlyError, match=r"needs about .* GiB .* try --size \d+"):
        check_memory(16384, 12288, 8 * 2**30)


@settings(max_examples=60, deadline=None)
@given(
    side=st.integers(64, 16384),
    aspect=st.floats(0.25, 1.0),
    gib=st.floats(0.5, 64.0),
    tile_size=st.sampled_from([None, 0, 512]),
)
def test_the_size_a_refusal_names_fits_and_one_more_does_not(
    side: int, aspect: float, gib: float, tile_size: int | None
) -> None:
    # The tiled estimate has fixed parts (a tile's graph, the L-BFGS history): a size scaled by the
    # square root of the shortfall was itself refused (16000x12000 on 23.6 GiB named 10003).
    available = int(gib * 2**30)
    width, height = side, max(1, round(side * aspect))
    try:
        check_memory(width, height, available, tile_size=tile_size)
        return
    except PainterlyError as exc:
        fits = int(str(exc).split("try --size ")[1].split()[0])
    assert 16 <= fits < side
    scaled = lambda s: (s, max(1, round(height * (s / side))))  # noqa: E731 (as the CLI scales: size / side)
    check_memory(*scaled(fits), available, tile_size=tile_size)
    if fits > 16:
        with pytest.raises(PainterlyError):
            check_memory(*scaled(fits + 1), available, tile_size=tile_size)
