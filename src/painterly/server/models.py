"""Fast stylization with trained feed-forward models (:mod:`painterly.feedforward`), synchronously.

Clients name a model from :meth:`FastStylizer.models`; the name is looked up in that list, so a
client never supplies a path. Loaded models are kept (a few) for the next request. The runtime
(torch or onnxruntime) is chosen by the library's policy, the same as the CLI's (images here are
at most ``max_size``, below the size where the torch backend's tiling would matter).

A multi-style model lists its ``styles``; a request may name one of them as the model (it runs
that model with that style), blend them with ``style_mix`` (``"the_wave:0.7,udnie:0.3"``) and set
``strength`` (0 = the photo, 1 = the painting).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from PIL import Image

from painterly.color import check_preserve_colors
from painterly.errors import PainterlyError, did_you_mean
from painterly.feedforward.mixing import check_strength
from painterly.images import save_image
from painterly.server.config import ServerSettings
from painterly.server.jobs import new_job_id
from painterly.server.store import DONE, JobStore

#: Loaded models kept in memory.
MODEL_CACHE = 4


class Busy(Exception):
    """Every stylization slot stayed taken for ``ServerSettings.stylize_wait`` seconds."""


def default_backend() -> Any | None:
    """:mod:`painterly.feedforward` if it offers ``list_models`` and ``load_model``, else None."""
    try:
        module = importlib.import_module("painterly.feedforward")
    except ImportError:
        return None
    return module if hasattr(module, "list_models") and hasattr(module, "load_model") else None


class FastStylizer:
    """Lists the trained models and runs them, one request at a time."""

    def __init__(self, settings: ServerSettings, store: JobStore, backend: Any | None = None) -> None:
        self.settings = settings
        self.store = store
        self._backend = backend
        self._backend_loaded = backend is not None
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._slot = threading.Semaphore(1)

    @property
    def backend(self) -> Any | None:
        if not self._backend_loaded:
            self._backend = default_backend()
            self._backend_loaded = True
        return self._backend

    def models(self) -> list[dict[str, Any]]:
        """The models, without their file paths (those stay on the server)."""
        if self.backend is None:
            return []
        listed = []
        for entry in self.backend.list_models():
            if entry.get("shadowed_by"):
                continue  # its name finds another model (a user model of the same name)
            public: dict[str, Any] = {
                k: v
                for k, v in entry.items()
                if k not in ("path", "shadowed_by") and isinstance(v, str | int | float | bool)
            }
            styles = _styles(entry)
            if styles:
                public["styles"] = styles
            listed.append(public)
        return listed

    def stylize(
        self,
        image: Image.Image,
        model: str,
        size: int | None = None,
        preserve_colors: str = "none",
        style_mix: str | None = None,
        strength: float = 1.0,
    ) -> dict[str, Any]:
        """Stylize ``image`` with the model named ``model``; record it as a finished job and return it.

        ``model`` may also be a style of a multi-style model; ``style_mix`` blends such a model's
        styles and ``strength`` (0-1) interpolates between the photo and the painting."""
        backend = self.backend
        if backend is None:
            raise PainterlyError(
                "fast stylization is not available: this install has no trained-model support"
            )
        entries = [entry for entry in backend.list_models() if not entry.get("shadowed_by")]
        names = [entry["name"] for entry in entries]
        owners = style_owners((entry["name"], _styles(entry)) for entry in entries)
        if model not in names and style_mix is None:
            if model in owners:
                model, style_mix = owners[model], model
            else:
                names += list(owners)
        if model not in names:
            available = ", ".join(names) if names else "none are installed"
            raise PainterlyError(
                f"unknown model {model!r}{did_you_mean(model, names)}; available: {available}"
            )
        check_preserve_colors(preserve_colors)
        strength = check_strength(strength)
        if style_mix is not None and (not isinstance(style_mix, str) or len(style_mix) > 1000):
            raise PainterlyError("style_mix must be text such as the_wave:0.7,udnie:0.3")
        mixing: dict[str, Any] = {}
        if style_mix is not None:
            mixing["style_mix"] = style_mix
        if strength != 1.0:
            mixing["strength"] = strength
        if size is not None and not 16 <= size <= self.settings.max_size:
            raise PainterlyError(f"size must be between 16 and {self.settings.max_size} pixels, got {size}")
        if size is None and max(image.size) > self.settings.max_size:
            size = self.settings.max_size
        if not self._slot.acquire(timeout=self.settings.stylize_wait):
            raise Busy
        try:
            begun = time.time()  # the record is made after the work: it was asked for (and begun) now
            result = self._load(model).stylize(image, size=size, preserve_colors=preserve_colors, **mixing)
        finally:
            self._slot.release()
        job_id = new_job_id()
        name = f"{job_id}.png"
        save_image(result, self.store.results_dir / name, {"Software": "painterly", "painterly:model": model})
        options = {"model": model, "size": size, "preserve_colors": preserve_colors, **mixing}
        self.store.create(
            job_id,
            "stylize",
            DONE,
            options,
            created=begun,
            started=begun,
            finished=max(time.time(), begun),
            result=name,
            width=result.width,
            height=result.height,
        )
        record = self.store.get(job_id)
        assert record is not None
        return record

    def _load(self, name: str) -> Any:
        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]
        device = self.settings.devices[0]
        assert self.backend is not None  # models are only loaded when the server has a backend
        policy = getattr(self.backend, "pick_backend", None)
        if policy is None:  # a stand-in backend without the library's policy: its own default
            model = self.backend.load_model(name, device=device)
        else:  # the library's policy, as in the CLI: onnxruntime on CPU-only machines
            model = self.backend.load_model(name, device=device, backend=policy("auto", device))
        self._cache[name] = model
        while len(self._cache) > MODEL_CACHE:
            self._cache.popitem(last=False)
        return model


def style_owners(models: Iterable[tuple[str, list[str]]]) -> dict[str, str]:
    """Each style of the multi-style models among (name, styles) pairs -> the model that paints it
    (the last one listed, as the library's name lookup), leaving out a style named like a model:
    that name is the model (``starry_night``)."""
    models = list(models)
    names = {name for name, _ in models}
    return {style: name for name, styles in models for style in styles if style not in names}


def _styles(entry: dict[str, Any]) -> list[str]:
    """The style names of a listed multi-style model (empty for a single-style one): the listing's
    (the library's model record), else its metadata's (a stand-in backend's listing)."""
    styles = entry.get("styles")
    if not isinstance(styles, list):
        metadata = entry.get("metadata")
        styles = metadata.get("styles") if isinstance(metadata, dict) else None
    return [str(name) for name in styles] if isinstance(styles, list) else []
