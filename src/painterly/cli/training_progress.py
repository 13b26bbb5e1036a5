"""Helpers shared by the long-running commands (``train``, ``distill``, ``stylize``, ``video``):
progress bars, argument types, and the one-line report of skipped training images."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class StoreOnce(argparse.Action):
    """An option given at most once: a second one is refused rather than silently replacing the
    first (``--keep a.png --keep b.png`` would otherwise paint with b.png alone)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, self.dest, None) is not None:
            raise argparse.ArgumentError(self, "given twice: give it once")
        setattr(namespace, self.dest, values)


def format_losses(losses: Mapping[str, float]) -> str:
    """Every loss that arrives, by name: ``content 1.2 style 3.4 total 4.6``."""
    return " ".join(f"{name} {value:.3g}" for name, value in losses.items())


def report_skipped(paths: Sequence[Path]) -> None:
    if paths:
        from painterly.feedforward.data import skipped_summary

        print(f"painterly: warning: {skipped_summary(paths)}", file=sys.stderr)


class LazyBar:
    """A tqdm bar made on the first report (so that nothing prints before work starts), silent when
    ``quiet``. Subclasses say how to open it from the first report and how to show each report."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def __call__(self, progress: Any) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(dynamic_ncols=True, **self.open_options(progress))
        self.show(progress)

    def open_options(self, progress: Any) -> dict[str, Any]:
        raise NotImplementedError

    def show(self, progress: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class StepBar(LazyBar):
    """A bar for training-like progress (one report per step, with messages to print)."""

    def open_options(self, progress: Any) -> dict[str, Any]:
        return {"total": progress.total_steps, "initial": progress.step - 1, "unit": "it"}

    def show(self, progress: Any) -> None:
        self.bar.update(1)
        self.bar.set_postfix_str(format_losses(progress.losses))
        for event in progress.events:
            self.bar.write(event)
