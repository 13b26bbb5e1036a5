"""Regions: masks loaded and checked (painterly.regions), each style painted into its own region,
a kept region held closer to the photo, through the library and the CLI."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.errors import PainterlyError
from painterly.images import pil_to_tensor
from painterly.losses import gram_matrix, guided_gram, propagate_mask
from painterly.optimization import Painter, make_settings, transfer
from painterly.regions import check_style_masks, load_mask, load_style_masks, open_mask
from painterly.vgg import load_vgg

from .helpers.images import make_painting, make_photo

FAST: dict[str, Any] = {"size": 64, "precision": "fp32", "device": "cpu"}
STYLE_LAYERS = ("relu1_1", "relu2_1")
#: A shallow loss network and Adam: a few seconds per painting on a busy 2-core CPU.
SHALLOW: dict[str, Any] = {
    **FAST,
    "size": 32,
    "content_layers": ["relu2_1"],
    "style_layers": list(STYLE_LAYERS),
    "optimizer": "adam",
    "learning_rate": 0.05,
}


def halves(width: int = 64, height: int = 48) -> tuple[Image.Image, Image.Image]:
    """Left-half and right-half masks (white inside)."""
    left = Image.new("L", (width, height), 0)
    left.paste(255, (0, 0, width // 2, height))
    return left, Image.eval(left, lambda v: 255 - v)


def speckle_painting(size: int = 64, seed: int = 5) -> Image.Image:
    """A 'painting' unlike make_painting's saturated stripes: fine grey-green speckle, no stripes."""
    rng = np.random.default_rng(seed)
    grey = rng.integers(0, 2, (size // 2, size // 2)).repeat(2, 0).repeat(2, 1) * 150 + 40
    array = np.stack([grey * 0.5, grey, grey * 0.6], axis=-1)
    return Image.fromarray(array.astype(np.uint8), "RGB")


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# loading and checking ------------------------------------------------------------------------


def test_mask_inputs_of_every_kind_become_greyscale() -> None:
    left, _ = halves(8, 4)
    as_array = np.asarray(left) / 255.0
    assert np.array_equal(np.asarray(open_mask(as_array)), np.asarray(left))
    assert np.array_equal(np.asarray(open_mask(as_array > 0.5)), np.asarray(left))
    assert np.array_equal(np.asarray(open_mask(torch.from_numpy(as_array)[None, None])), np.asarray(left))
    assert np.array_equal(np.asarray(open_mask(png(left))), np.asarray(left))
    assert open_mask(left.convert("RGB")).mode == "L"


def test_transparent_pixels_are_outside_and_strokes_inside(tmp_path: Path) -> None:
    """A brush stroke on a transparent layer (as a drawing program saves it) is the region."""
    stroke = Image.new("RGBA", (8, 4), (0, 0, 0, 0))
    stroke.paste((255, 255, 255, 255), (0, 0, 3, 4))
    path = tmp_path / "stroke.png"
    stroke.save(path)
    mask = np.asarray(open_mask(path))
    assert mask[:, :3].min() == 255 and mask[:, 3:].max() == 0


@pytest.mark.parametrize(
    ("masks", "styles", "message"),
    [
        (1, 2, "2 style image.* but 1 mask"),
        (3, 2, "2 style image.* but 3 mask"),
    ],
)
def test_mask_count_must_match_the_styles(masks: int, styles: int, message: str) -> None:
    left, _ = halves()
    with pytest.raises(PainterlyError, match=message):
        load_style_masks([left] * masks, styles)


def test_bad_masks_get_one_clear_error(tmp_path: Path) -> None:
    left, right = halves()
    black = Image.new("L", (64, 48), 0)
    with pytest.raises(PainterlyError, match="mask 2 is all black"):
        load_style_masks([left, black], 2)
    with pytest.raises(PainterlyError, match=r"leave 50\.0% of the picture to no style"):
        load_style_masks([left, left], 2)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(PainterlyError, match="not an image"):
        load_style_masks([left, text], 2)
    with pytest.raises(PainterlyError, match="expected a path, PIL image or array"):
        load_style_masks([left, 3], 2)  # type: ignore[list-item]
    with pytest.raises(PainterlyError, match="not found"):
        load_style_masks([left, tmp_path / "missing.png"], 2)
    with pytest.raises(PainterlyError, match="keep mask is all black"):
        load_mask(black)


def test_masks_of_different_sizes_and_soft_edges_may_cover_together() -> None:
    """Sizes differ (each is resized to the picture), soft edges overlap: no pixel is uncovered."""
    ramp = Image.fromarray(np.tile(np.linspace(0, 255, 300), (100, 1)).astype(np.uint8), "L")
    inverse = Image.eval(ramp, lambda v: 255 - v).resize((30, 10))
    check_style_masks([ramp, inverse], 2)
    thin_gap = Image.new("L", (1000, 500), 255)
    thin_gap.paste(0, (500, 0, 502, 500))  # a 2 px black line in a full mask: uncovered at full size
    with pytest.raises(PainterlyError, match="to no style"):
        check_style_masks([thin_gap], 1)


def test_bad_masks_are_refused_before_the_loss_network_loads() -> None:
    left, _ = halves()
    with patch("painterly.optimization.load_vgg", side_effect=AssertionError("loaded")):
        with pytest.raises(PainterlyError, match="to no style"):
            transfer(make_photo(), [make_painting(), speckle_painting()], masks=[left, left], **FAST)
        with pytest.raises(PainterlyError, match="keep mask is all black"):
            transfer(make_photo(), make_painting(), keep=np.zeros((4, 4)), **FAST)


# painting ------------------------------------------------------------------------------------


def _region_gram_distances(image: Image.Image, mask: Image.Image, styles: list[Image.Image]) -> list[float]:
    """The guided Gram distance of ``image``'s region ``mask`` to each style's whole-image Grams."""
    vgg = load_vgg("vgg19")
    tensor = pil_to_tensor(image)
    features = vgg(tensor, STYLE_LAYERS)
    guide = pil_to_tensor(mask.resize(image.size).convert("RGB")).mean(1, keepdim=True)
    guides = propagate_mask(guide, "vgg19", STYLE_LAYERS)
    distances = []
    for style in styles:
        # At the size the painter used: the style image's long side is the output's.
        style_features = vgg(pil_to_tensor(style.resize((max(image.size),) * 2)), STYLE_LAYERS)
        distances.append(
            sum(
                float(
                    (guided_gram(features[layer], guides[layer]) - gram_matrix(style_features[layer]))
                    .pow(2)
                    .mean()
                )
                for layer in STYLE_LAYERS
            )
        )
    return distances


@torch.no_grad()
def _distances(image: Image.Image, masks: tuple[Image.Image, Image.Image], styles: list[Image.Image]):
    return [_region_gram_distances(image, mask, styles) for mask in masks]


def test_each_region_takes_its_own_style() -> None:
    """Left half painted from one painting, right half from the other: each region's Gram matrices
    end closer to its own painting than to the other one (the photo's left half starts closer to
    the right half's painting, so the left region's outcome is the mask's doing)."""
    photo, styles = make_photo(), [make_painting(), speckle_painting()]
    left, right = halves()
    (left_a, left_b), _ = _distances(photo.resize((32, 24)), (left, right), styles)
    assert left_b < left_a / 2
    painted = Painter(make_settings(iterations=30, **SHALLOW), styles).paint(
        photo, content_masks=[left, right]
    )
    (left_own, left_other), (right_other, right_own) = _distances(painted.image, (left, right), styles)
    assert left_own < left_other / 2 and right_own < right_other / 2


def test_kept_region_stays_closer_to_the_photo() -> None:
    photo, style = make_photo(), make_painting()
    left, _ = halves()
    options = dict(iterations=30, **SHALLOW)
    plain = np.asarray(transfer(photo, style, **options)).astype(float)
    kept = np.asarray(transfer(photo, style, keep=left, **options)).astype(float)
    target = np.asarray(photo.resize(kept.shape[1::-1])).astype(float)

    def error(image: np.ndarray, columns: slice) -> float:
        return float(np.abs(image[:, columns] - target[:, columns]).mean())

    inside, outside = slice(0, 13), slice(19, 32)
    assert error(kept, inside) < error(plain, inside) * 0.6
    assert error(kept, outside) > error(kept, inside) * 1.5  # the rest is still painted


# the command line ----------------------------------------------------------------------------


def test_cli_paints_regions_and_refuses_bad_masks(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    photo, first, second = tmp_path / "photo.png", tmp_path / "a.png", tmp_path / "b.png"
    make_photo().save(photo)
    make_painting().save(first)
    speckle_painting().save(second)
    left, right = halves()
    left.save(tmp_path / "left.png")
    right.save(tmp_path / "right.png")
    out = tmp_path / "out.png"
    common = ["--size", "32", "--iterations", "2", "--precision", "fp32", "--device", "cpu", "-q"]
    code, _, err = run_cli(
        photo, "--style", first, "--mask", tmp_path / "left.png", "--style", second, "--mask",
        tmp_path / "right.png", "--keep", tmp_path / "left.png", "-o", out, *common,
    )  # fmt: skip
    assert code == 0, err
    assert Image.open(out).size == (32, 24)
    bad = [
        (["--mask", tmp_path / "left.png"], "2 style image(s) but 1 mask(s)"),
        (["--mask", tmp_path / "left.png", "--mask", tmp_path / "left.png"], "to no style"),
        (["--mask", photo.parent / "nope.png", "--mask", tmp_path / "left.png"], "mask 1 not found"),
        (["--mask", tmp_path / "left.png", "--mask", tmp_path / "right.png", "--keep", tmp_path], "folder"),
    ]
    for extra, message in bad:
        code, _, err = run_cli(photo, "--style", first, "--style", second, *extra, "-o", out, *common)
        assert code == 2 and message in err and err.count("\n") == 1, err
    code, _, err = run_cli(
        photo, "--style", first, "--style", second, "--mask", tmp_path / "left.png", "--mask",
        tmp_path / "right.png", "-o", tmp_path / "left.png", *common,
    )  # fmt: skip
    assert code == 2 and "input" in err  # an output may never overwrite a mask


# the feed-forward path: stylize --mask ---------------------------------------------------------


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    from painterly.feedforward.model_file import write_model_file

    from .helpers.models import tiny_style_net

    return write_model_file(
        tmp_path / "tiny.safetensors", tiny_style_net(), {"name": "tiny", "style": "s.png", "steps": 0}
    )


def test_stylize_mask_paints_only_the_region_with_a_feathered_edge(model_file: Path) -> None:
    from painterly.feedforward import load_model

    photo = make_photo(64, 48)
    model = load_model(model_file, device="cpu", backend="torch", precision="fp32")
    full = np.asarray(model.stylize(photo)).astype(float)
    left, _ = halves(16, 12)  # any size: resized to the output
    sharp = np.asarray(model.stylize(photo, mask=left, feather=0)).astype(float)
    soft = np.asarray(model.stylize(photo, mask=left, feather=4)).astype(float)
    original = np.asarray(photo).astype(float)
    assert np.abs(sharp[:, :30] - full[:, :30]).max() <= 1  # inside: the painting
    assert np.abs(sharp[:, 34:] - original[:, 34:]).max() <= 1  # outside: the photo
    assert np.abs(full[:, 32:] - original[:, 32:]).mean() > 10  # (the painting differs from the photo)
    # Feathered: across the edge the output moves from the painting to the photo gradually.
    edge = np.abs(soft[:, 28:36] - original[:, 28:36]).mean(axis=(0, 2))
    assert np.all(np.diff(edge) < 1) and 0 < edge[-1] < edge[0]
    assert (
        np.abs(soft[:, :20] - full[:, :20]).max() <= 1 and np.abs(soft[:, 44:] - original[:, 44:]).max() <= 1
    )
    with pytest.raises(PainterlyError, match="mask is all black"):
        model.stylize(photo, mask=np.zeros((4, 4)))
    with pytest.raises(PainterlyError, match="feather"):
        model.stylize(photo, mask=left, feather=-1)


def test_stylize_cli_mask(model_file: Path, tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    photo, mask, out = tmp_path / "photo.png", tmp_path / "mask.png", tmp_path / "out.png"
    make_photo(64, 48).save(photo)
    halves(64, 48)[1].save(mask)
    base = ["stylize", photo, "-m", model_file, "--backend", "torch", "--device", "cpu"]
    code, _, err = run_cli(*base, "--mask", mask, "--feather", "2", "-o", out)
    assert code == 0, err
    result, original = np.asarray(Image.open(out)).astype(float), np.asarray(Image.open(photo)).astype(float)
    assert np.abs(result[:, :24] - original[:, :24]).max() <= 1  # left of the right-half mask: the photo
    assert np.abs(result[:, 40:] - original[:, 40:]).mean() > 10
    Image.new("L", (8, 8), 0).save(tmp_path / "black.png")
    (tmp_path / "notes.png").write_text("no image")
    cases: list[tuple[list[object], str]] = [
        (["--mask", tmp_path / "black.png"], "mask is all black"),
        (["--mask", tmp_path / "notes.png"], "not an image"),
        (["--mask", tmp_path / "none.png"], "not found"),
        (["--feather", "3"], "give the mask too"),
        (["--mask", mask, "--feather", "-2"], "from 0 to 1000"),
    ]
    for extra, message in cases:
        code, _, err = run_cli(*base, *extra, "-o", tmp_path / "x.png")
        assert code == 2 and message in err and err.count("\n") == 1, err
    code, _, err = run_cli(*base, "--mask", mask, "-o", mask)
    assert code == 2 and not (tmp_path / "x.png").exists()


# the HTTP API: a mask per style in /api/jobs ---------------------------------------------------


def test_api_takes_a_mask_per_style_and_refuses_bad_ones(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    from painterly.server import ServerSettings

    from .helpers.server import FakeRunner, make_client, png_bytes, wait_for

    class MaskRunner(FakeRunner):
        def __call__(self, content, styles, settings, callback, masks=None):  # noqa: ANN001, ANN204
            self.masks = masks
            return super().__call__(content, styles, settings, callback)

    runner = MaskRunner()
    settings = ServerSettings(data_dir=tmp_path / "data", devices=("cpu",), max_queue=4, preview_interval=0.0)
    left, right = halves(80, 60)
    stroke = Image.new("RGBA", (80, 60), (0, 0, 0, 0))  # the page's kind: a transparent layer...
    stroke.paste((255, 255, 255, 255), (40, 0, 80, 60))  # ...with the right half painted

    def post(client, masks: list[bytes | str], styles: int = 2):  # noqa: ANN001, ANN202
        files = [("content", ("photo.png", png_bytes(), "image/png"))]
        files += [("style", (f"s{i}.png", png_bytes(36, 36, seed=i + 1), "image/png")) for i in range(styles)]
        files += [
            ("mask", (f"m{i}.png", m, "image/png")) for i, m in enumerate(masks) if isinstance(m, bytes)
        ]
        data = {"size": "32", "iterations": "3"}
        data.update(("mask", m) for m in masks if isinstance(m, str))
        return client.post("/api/jobs", files=files, data=data)

    with make_client(settings, runner) as client:
        response = post(client, [png(left), png(stroke)])
        assert response.status_code == 202, response.text
        assert wait_for(client, response.json()["id"])["status"] == "done"
        assert [m.mode for m in runner.masks] == ["L", "L"] and runner.masks[0].size == (32, 24)
        assert (
            np.asarray(runner.masks[1])[:, :14].max() == 0 and np.asarray(runner.masks[1])[:, 18:].min() > 250
        )
        response = post(client, [])  # masks are optional
        assert response.status_code == 202
        wait_for(client, response.json()["id"])
        assert runner.masks is None
        cases: list[tuple[list[bytes | str], str]] = [
            ([png(left)], "2 style image(s) but 1 mask(s)"),
            ([png(left), png(left)], "to no style"),
            ([png(left), png(Image.new("L", (8, 8), 0))], "mask 2 is all black"),
            ([png(left), b"not an image at all"], "mask 2 is not an image"),
            ([png(left), "text"], "mask must be a file upload"),
        ]
        for masks, message in cases:
            response = post(client, masks)
            assert response.status_code == 400 and message in response.json()["detail"], response.text
