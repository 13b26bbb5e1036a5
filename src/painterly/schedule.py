"""Spending evaluations where they pay: how long each scale of a coarse-to-fine run may take, when a
scale has stopped improving, and how a time limit is kept.

Why: evaluations cost in proportion to the pixels (a 512 px evaluation costs four of a 256 px one), and
a scale's loss flattens long before a fixed count of iterations runs out. So a :class:`Schedule` ends
a scale when its loss has stopped improving (:class:`Plateau`) or when the scale's share of a time
limit is spent, hands the time left over to the later scales, and predicts the time still to go from
the measured speed (seconds per megapixel-evaluation), so that the ETA a user sees stays honest.

Pure bookkeeping on numbers and a clock: no torch, so it is tested with a fake clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

#: L-BFGS with a strong-Wolfe line search needs about this many evaluations per iteration (measured
#: 1.3-1.45 on the default run); used only until a run has measured its own.
EVALS_PER_ITERATION = 1.4
#: The first evaluations of a scale pay for memory allocation and kernel set-up: not used for speed.
WARMUP_EVALUATIONS = 2


@dataclass
class Plateau:
    """The loss has stopped improving: over the last ``window`` iterations the best loss fell by less
    than ``tolerance`` of itself. Never before ``min_iterations``."""

    window: int = 20
    tolerance: float = 0.01
    min_iterations: int = 30
    best: list[float] = field(default_factory=list)

    def update(self, loss: float) -> bool:
        """Record the best loss after one more iteration; True when the scale has converged."""
        self.best.append(min(loss, self.best[-1]) if self.best else loss)
        n = len(self.best)
        if n < max(self.min_iterations, self.window + 1):
            return False
        before, now = self.best[-1 - self.window], self.best[-1]
        return before - now < self.tolerance * abs(before)


@dataclass
class Schedule:
    """The plan of a coarse-to-fine run: per scale, at most ``iterations[i]``, stopping at a plateau
    (if ``stop_early``), and within ``time_limit`` seconds in all.

    A time limit is shared among the scales by their planned cost (iterations x pixels); what a scale
    leaves unused passes to the later ones. The optimization loop calls :meth:`start_scale`,
    :meth:`evaluated` after each evaluation and :meth:`iteration_done` after each iteration, which
    says whether to end the scale.
    """

    pixels: Sequence[int]
    iterations: Sequence[int]
    time_limit: float | None = None
    stop_early: bool = False
    #: Seconds per evaluation per megapixel, if known before the run (e.g. from the calibration).
    seconds_per_megapixel: float | None = None
    plateau: Callable[[], Plateau] = Plateau
    clock: Callable[[], float] = time.monotonic
    #: When the time limit began (a clock reading; default: now). A run that first loads a network
    #: and calibrates counts that time too.
    started: float | None = None
    scale: int = field(init=False, default=-1)
    done: list[int] = field(init=False)
    _scale_started: float = field(init=False, default=0.0)
    _allotment: float = field(init=False, default=math.inf)
    _plateau: Plateau | None = field(init=False, default=None)
    _evals: int = field(init=False, default=0)
    _iters: int = field(init=False, default=0)
    _timed_seconds: float = field(init=False, default=0.0)
    _timed_megapixels: float = field(init=False, default=0.0)
    _total_evals: int = field(init=False, default=0)
    _total_iters: int = field(init=False, default=0)
    _last_eval: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if len(self.pixels) != len(self.iterations):
            raise ValueError("one iteration count per scale")
        if self.started is None:
            self.started = self.clock()
        self.done = [0] * len(self.pixels)

    # -- speed -------------------------------------------------------------------------------------

    @property
    def speed(self) -> float | None:
        """Seconds per evaluation per megapixel: measured in this run if possible, else the prior."""
        if self._timed_megapixels > 0:
            return self._timed_seconds / self._timed_megapixels
        return self.seconds_per_megapixel

    @property
    def evals_per_iteration(self) -> float:
        if self._total_iters >= 5:
            return self._total_evals / self._total_iters
        return EVALS_PER_ITERATION

    def seconds_per_iteration(self, scale: int) -> float | None:
        speed = self.speed
        if speed is None:
            return None
        return speed * self.pixels[scale] / 1e6 * self.evals_per_iteration

    # -- time ----------------------------------------------------------------------------------------

    def elapsed(self) -> float:
        assert self.started is not None
        return self.clock() - self.started

    def time_left(self) -> float:
        return math.inf if self.time_limit is None else self.time_limit - self.elapsed()

    @property
    def expired(self) -> bool:
        return self.time_left() <= 0

    def _weight(self, scale: int) -> float:
        return self.iterations[scale] * self.pixels[scale]

    # -- the loop's calls ----------------------------------------------------------------------------

    def start_scale(self, scale: int) -> int:
        """Begin ``scale``; returns the most iterations it may take (for the optimizer's own limit)."""
        self.scale = scale
        now = self.clock()
        self._scale_started = now
        self._last_eval = now
        self._evals = 0
        self._iters = 0
        self._plateau = self.plateau() if self.stop_early else None
        if self.time_limit is None:
            self._allotment = math.inf
        else:
            rest = sum(self._weight(i) for i in range(scale, len(self.pixels)))
            self._allotment = max(0.0, self.time_left()) * self._weight(scale) / max(rest, 1)
        return self.iterations[scale]

    def evaluated(self) -> None:
        """One loss evaluation finished (its time feeds the speed estimate after the warm-up)."""
        now = self.clock()
        self._evals += 1
        self._total_evals += 1
        if self._evals > WARMUP_EVALUATIONS:
            self._timed_seconds += now - self._last_eval
            self._timed_megapixels += self.pixels[self.scale] / 1e6
        self._last_eval = now

    def iteration_done(self, loss: float) -> bool:
        """One iteration of the current scale finished with best ``loss``; True to end the scale now."""
        self._iters += 1
        self._total_iters += 1
        self.done[self.scale] = self._iters
        if self._iters >= self.iterations[self.scale] or self.expired:
            return True
        if self._plateau is not None and self._plateau.update(loss):
            return True
        return self.time_limit is not None and self.clock() - self._scale_started >= self._allotment

    def scale_time_up(self) -> bool:
        """True when the current scale has spent its share of the time limit (checked per evaluation,
        since one L-BFGS iteration may take several evaluations)."""
        if self.time_limit is None:
            return False
        return self.expired or self.clock() - self._scale_started >= self._allotment * 1.05

    # -- what to show --------------------------------------------------------------------------------

    def planned_iterations(self, scale: int, *, hold_current: bool = True) -> int:
        """The iterations ``scale`` is expected to take: its cap, or fewer if its time share is smaller
        (``hold_current``: the running scale keeps its unspent share; False once it has ended)."""
        cap = self.iterations[scale]
        if scale < self.scale:
            return self.done[scale]
        per_iteration = self.seconds_per_iteration(scale)
        if self.time_limit is None or per_iteration is None or per_iteration <= 0:
            return cap
        if scale == self.scale and hold_current:
            # The scale runs until its share is spent: the iteration under way counts as planned.
            left = self._current_left()
            return min(cap, self._iters + (math.ceil(left / per_iteration) if left > 0 else 0))
        share = self._later_share(scale, hold_current=hold_current)
        return min(cap, max(1, math.floor(share / per_iteration)))

    def _current_left(self) -> float:
        """The running scale's share of the time limit still unspent (0 before the first scale)."""
        if self.scale < 0 or self.time_limit is None:
            return 0.0
        return max(0.0, self._allotment - (self.clock() - self._scale_started))

    def _later_share(self, scale: int, *, hold_current: bool) -> float:
        """Seconds a scale after the running one will get: the time left, less what the running
        scale still holds, shared by the later scales' planned cost."""
        held = self._current_left() if hold_current else 0.0
        later = range(self.scale + 1, len(self.pixels))
        weight = max(sum(self._weight(i) for i in later), 1)
        return max(0.0, self.time_left() - held) * self._weight(scale) / weight

    @property
    def total_iterations(self) -> int:
        return self.iterations_from(0)

    def iterations_from(self, scale: int) -> int:
        """The iterations planned for ``scale`` and the scales after it (asked from a scale after the
        running one: that one has ended and its unspent time passes on)."""
        hold = scale <= self.scale
        return sum(self.planned_iterations(i, hold_current=hold) for i in range(scale, len(self.pixels)))

    def eta(self, from_scale: int | None = None) -> float | None:
        """Seconds still to go: for each scale, its iterations left at the measured speed or, under a
        time limit, the share of the time it will run for if that is less (a scale runs until its
        share is spent), never beyond the time limit (``from_scale``: counting only that scale and
        later ones, whole; the running scale has ended). None until a speed is known."""
        first = max(self.scale, 0) if from_scale is None else from_scale
        hold = from_scale is None
        left = 0.0
        for i in range(first, len(self.pixels)):
            per_iteration = self.seconds_per_iteration(i)
            if per_iteration is None:
                return None
            current = i == self.scale and hold
            done = self._iters if current else 0
            work = max(0, self.iterations[i] - done) * per_iteration
            if self.time_limit is not None:
                work = min(work, self._current_left() if current else self._later_share(i, hold_current=hold))
            left += work
        return min(left, max(0.0, self.time_left()))


__all__ = ["EVALS_PER_ITERATION", "Plateau", "Schedule"]
