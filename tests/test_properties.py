"""Property-based tests (Hypothesis) of the parsers every surface shares: numbers, settings values,
style mixes, sizes, time windows, the server's form fields and the live socket's messages.

Each property states what must hold for a whole class of input: any text either parses into a value
inside the declared range, or raises :class:`PainterlyError` with a short one-line message; never
another exception, never a value out of range, never NaN or infinity."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from painterly.errors import PainterlyError  # noqa: E402
from painterly.feedforward.mixing import mix_vector, parse_style_mix  # noqa: E402
from painterly.numbers import parse_decimal, parse_whole  # noqa: E402
from painterly.settings import (  # noqa: E402
    FIELDS_BY_NAME,
    MAX_SIZE,
    MAX_TIME_LIMIT,
    MAX_WEIGHT,
    SERVER_FIELDS,
    TransferSettings,
    make_settings,
    parse_value,
    settings_from_strings,
)

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Text a user might type: digits of every script, signs, exponents, dots, spaces, words and junk.
number_like = st.one_of(
    st.text(alphabet="0123456789+-.eE_ ", max_size=30),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Zs", "Pd"]), max_size=8),
    st.sampled_from(["nan", "inf", "-inf", "Infinity", "1e308", "1e309", "-0", "0x10", "1_000", "²", "٣"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
    st.text(max_size=40),
)


def one_line_error(error: PainterlyError) -> None:
    text = str(error)
    assert text and "\n" not in text and "\r" not in text and len(text) < 400, text


def expect_value_or_error(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except PainterlyError as error:
        one_line_error(error)
        return None


# numbers -------------------------------------------------------------------------------------------


@PROPERTY
@given(text=number_like, low=st.none() | st.integers(-100, 100), span=st.none() | st.integers(0, 10**6))
def test_whole_numbers_parse_in_range_or_refuse(text: str, low: int | None, span: int | None) -> None:
    high = None if span is None else (low or 0) + span
    value = expect_value_or_error(parse_whole, text, "n", minimum=low, maximum=high)
    if value is not None:
        assert isinstance(value, int)
        assert text.strip().lstrip("+-").isascii() and text.strip().lstrip("+-").isdigit()
        assert (low is None or value >= low) and (high is None or value <= high)


@PROPERTY
@given(text=number_like, high=st.none() | st.floats(0, 1e300))
def test_decimal_numbers_are_finite_ascii_and_in_range(text: str, high: float | None) -> None:
    value = expect_value_or_error(parse_decimal, text, "x", minimum=0, maximum=high)
    if value is not None:
        assert isinstance(value, float) and math.isfinite(value) and value >= 0
        assert high is None or value <= high
        assert text.isascii() or text.strip().isascii()


@PROPERTY
@given(value=st.integers(-(10**30), 10**30))
def test_every_ascii_whole_number_round_trips(value: int) -> None:
    assert parse_whole(f" {value} ", "n") == value


@PROPERTY
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_round_trips(value: float) -> None:
    assert parse_decimal(repr(value), "x") == value


# settings values -----------------------------------------------------------------------------------

numeric_fields = [f for f in FIELDS_BY_NAME.values() if f.kind in ("int", "float", "floats")]


def _in_declared_range(field: Any, value: float) -> bool:
    low, high = field.minimum, field.maximum
    above = low is None or (value > low if field.exclusive_minimum else value >= low)
    return above and (high is None or value <= high)


@PROPERTY
@given(field=st.sampled_from(numeric_fields), text=number_like)
def test_a_settings_value_parses_into_its_range_or_refuses(field: Any, text: str) -> None:
    value = expect_value_or_error(parse_value, field, text)
    if value is None:
        return
    for item in value if isinstance(value, list) else [value]:
        assert math.isfinite(item) and _in_declared_range(field, item), (field.name, text, item)


form_values = st.dictionaries(
    st.sampled_from([f.name for f in SERVER_FIELDS]), number_like | st.sampled_from(["", " "]), max_size=5
)


@PROPERTY
@given(values=form_values, cap=st.integers(16, 4096))
def test_settings_from_strings_gives_valid_settings_within_the_caps_or_refuses(
    values: dict[str, str], cap: int
) -> None:
    resolved = expect_value_or_error(settings_from_strings, values, caps={"size": cap})
    if resolved is None:
        return
    assert isinstance(resolved, TransferSettings)
    assert 16 <= resolved.size <= min(cap, MAX_SIZE) or "size" not in values or not values["size"].strip()
    for name in ("content_weight", "style_weight", "tv_weight"):
        assert 0 <= getattr(resolved, name) <= MAX_WEIGHT
    assert resolved.time_limit is None or 0 < resolved.time_limit <= MAX_TIME_LIMIT
    for weight in resolved.style_blend or ():
        assert math.isfinite(weight) and 0 <= weight <= MAX_WEIGHT


python_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(),
    st.text(max_size=12),
    st.lists(st.floats(), max_size=3),
)


@PROPERTY
@given(name=st.sampled_from([f.name for f in numeric_fields]), value=python_values)
def test_make_settings_validates_any_python_value(name: str, value: object) -> None:
    """The library's own entry point: any value is a valid setting or one PainterlyError."""
    expect_value_or_error(make_settings, **{name: value})


# style mixes -----------------------------------------------------------------------------------------

STYLES = ["the_wave", "udnie", "mosaic"]
mix_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.tuples(st.sampled_from([*STYLES, "x", " ", ""]), number_like), min_size=1, max_size=4).map(
        lambda parts: ",".join(f"{name}:{weight}" for name, weight in parts)
    ),
)


@PROPERTY
@given(text=mix_text)
def test_a_style_mix_is_a_convex_combination_or_refused(text: str) -> None:
    mix = expect_value_or_error(parse_style_mix, text)
    if mix is None:
        return
    assert all(math.isfinite(weight) and weight >= 0 for weight in mix.values())
    vector = expect_value_or_error(mix_vector, STYLES, mix)
    if vector is not None:
        assert len(vector) == len(STYLES) and all(0 <= w <= 1 for w in vector)
        assert math.isclose(sum(vector), 1.0, rel_tol=1e-9)


# sizes and time windows ------------------------------------------------------------------------------


@PROPERTY
@given(
    width=st.integers(1, 10_000),
    height=st.integers(1, 10_000),
    size=st.none() | st.integers(-10, 10**7),
)
def test_video_output_sizes_are_even_and_bounded_or_refused(
    width: int, height: int, size: int | None
) -> None:
    pytest.importorskip("av")
    from painterly.video.io import MAX_SIDE, output_size

    shape = expect_value_or_error(output_size, width, height, size)
    if shape is not None:
        w, h = shape
        assert w % 2 == 0 and h % 2 == 0 and w >= 0 and h >= 0
        if size is not None:
            assert max(w, h) <= max(size, 2) <= MAX_SIDE


@PROPERTY
@given(width=st.integers(1, 5000), height=st.integers(1, 5000), scale=st.floats(0.1, 1.0))
def test_the_flow_always_runs_at_a_size_dis_takes(width: int, height: int, scale: float) -> None:
    pytest.importorskip("cv2")
    from painterly.video.flow import MIN_SIDE, NARROW, flow_size

    w, h = flow_size(width, height, scale)
    assert min(w, h) >= MIN_SIDE
    assert min(w, h) >= NARROW or max(w, h) <= 2 * min(w, h)


seconds = st.one_of(st.floats(), st.integers(-(10**12), 10**12).map(float))


@PROPERTY
@given(start=seconds, duration=st.none() | seconds, frames=st.none() | st.integers(-5, 10**9))
def test_a_time_window_is_finite_and_forward_or_refused(
    start: float, duration: float | None, frames: int | None
) -> None:
    pytest.importorskip("av")
    from painterly.video.pipeline import MAX_SECONDS, Window

    window = Window(start, duration, frames)
    if expect_value_or_error(window.check) is None and _window_ok(window):
        assert 0 <= start <= MAX_SECONDS
        assert duration is None or 0 < duration <= MAX_SECONDS
        assert frames is None or frames >= 1


def _window_ok(window: Any) -> bool:
    try:
        window.check()
    except PainterlyError:
        return False
    return True


@PROPERTY
@given(text=number_like)
def test_a_time_limit_is_positive_finite_and_bounded_or_refused(text: str) -> None:
    value = expect_value_or_error(parse_value, FIELDS_BY_NAME["time_limit"], text)
    if value is not None:
        assert 0 < value <= MAX_TIME_LIMIT


# server form fields ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limits(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("fastapi")
    from painterly.server.config import ServerSettings

    return ServerSettings(data_dir=tmp_path_factory.mktemp("data"), devices=("cpu",))


@PROPERTY
@given(values=form_values, styles=st.integers(0, 6))
def test_a_job_form_is_within_every_server_cap_or_refused(limits: Any, values: dict, styles: int) -> None:
    from painterly.server.forms import job_work, parse_job_form

    parsed = expect_value_or_error(parse_job_form, values, styles, limits)
    if parsed is None:
        return
    resolved, options = parsed
    assert resolved.size <= limits.max_size and job_work(resolved) <= limits.max_work
    json.dumps(options)  # recorded as JSON


class _Models:
    def check(self, name: object) -> str:
        if name != "tiny":
            raise PainterlyError(f"unknown model {str(name)[:40]!r}")
        return "tiny"


@PROPERTY
@given(
    size=st.none() | number_like,
    strength=st.none() | number_like,
    extra=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=1),
)
def test_a_video_form_is_within_the_caps_or_refused(limits: Any, size, strength, extra) -> None:
    pytest.importorskip("cv2")
    from painterly.server.live import MAX_STRENGTH
    from painterly.server.videos import parse_options

    values = {"model": "tiny", **extra}
    if size is not None:
        values["size"] = size
    if strength is not None:
        values["temporal_strength"] = strength
    options = expect_value_or_error(parse_options, values, limits, _Models())
    if options is not None:
        assert options["size"] is None or 16 <= options["size"] <= limits.video_max_size
        assert 0 <= options["temporal_strength"] <= MAX_STRENGTH


@PROPERTY
@given(size=number_like, strength=number_like)
def test_the_stylize_form_numbers_are_in_range_or_refused(size: str, strength: str) -> None:
    pytest.importorskip("fastapi")
    from painterly.server.routes.stylize import MIN_SIDE, _parse_size, _parse_strength

    value = expect_value_or_error(_parse_size, size, 1024)
    assert value is None or MIN_SIDE <= value <= 1024
    fraction = expect_value_or_error(_parse_strength, strength)
    assert fraction is None or 0 <= fraction <= 1


# socket messages -------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
brackets = st.text(alphabet='[]{}"\\:,1 ', max_size=2100)


@PROPERTY
@given(text=st.one_of(st.text(max_size=300), brackets, json_values.map(json.dumps)))
def test_any_control_message_is_a_config_object_or_refused(text: str) -> None:
    pytest.importorskip("fastapi")
    from painterly.server.live import parse_control

    message = expect_value_or_error(parse_control, text)
    if message is not None:
        assert isinstance(message, dict) and message["type"] == "config"


@PROPERTY
@given(
    config=st.fixed_dictionaries(
        {"type": st.just("config")},
        optional={"blend": json_values, "temporal_strength": json_values, "model": json_values},
    )
)
def test_a_parsed_config_passes_the_blend_and_strength_checks_or_refuses(config: dict) -> None:
    pytest.importorskip("fastapi")
    from painterly.server.live import MAX_STRENGTH, check_blend, parse_control

    text = json.dumps(config)
    assume(len(text) <= 2048)
    message = expect_value_or_error(parse_control, text)
    if message is None:
        return
    if message.get("blend") is not None:
        mix = expect_value_or_error(check_blend, message["blend"], STYLES)
        if mix is not None:
            assert all(math.isfinite(w) and w >= 0 for w in mix.values()) and sum(mix.values()) > 0
    strength = message.get("temporal_strength")
    if isinstance(strength, int | float) and not isinstance(strength, bool):
        float(strength)  # bounded integers: converting never overflows
        assert not (0 <= strength <= MAX_STRENGTH) or math.isfinite(strength)


def test_the_properties_cover_every_server_field() -> None:
    """A new server setting is tried by the form properties above without being listed here."""
    assert {f.name for f in SERVER_FIELDS} <= set(FIELDS_BY_NAME)
    assert Path(__file__).name == "test_properties.py"


#: ``--coarse-style`` text: factors, colons, weights, separators and junk.
factor_text = st.one_of(
    st.text(alphabet="0123456789:.,eE- ", max_size=24),
    st.lists(
        st.tuples(st.integers(-3, 70), st.none() | st.floats(-1, 1e16, allow_nan=False)), max_size=4
    ).map(lambda items: ",".join(f"{f}" if w is None else f"{f}:{w!r}" for f, w in items)),
)


@PROPERTY
@given(text=factor_text)
def test_coarse_style_factors_parse_into_range_or_refuse(text: str) -> None:
    import argparse

    from painterly.cli.train import _factors
    from painterly.losses.coarse import coarse_weights

    try:
        parsed = _factors(text)
    except argparse.ArgumentTypeError as error:
        assert str(error) and "\n" not in str(error)
        return
    weights = coarse_weights(parsed)
    assert weights and all(2 <= factor <= 64 for factor in weights)
    assert all(0 <= w <= MAX_WEIGHT and math.isfinite(w) for w in weights.values())
    # Plain factors stay a tuple (recorded as a list); any weight makes it a mapping.
    assert isinstance(parsed, dict) == (":" in text)
