"""The schedule of a coarse-to-fine run, on a fake clock: plateaus, time shares, an honest ETA."""

from __future__ import annotations

import pytest

from painterly.schedule import Plateau, Schedule


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_scale(schedule: Schedule, clock: Clock, scale: int, seconds_per_eval: float, losses) -> int:
    """Drive one scale as the optimization loop does: one evaluation per iteration."""
    cap = schedule.start_scale(scale)
    for i in range(cap):
        clock.now += seconds_per_eval
        schedule.evaluated()
        if schedule.iteration_done(losses(i)):
            return i + 1
    return cap


def test_plateau_stops_when_the_loss_flattens_not_before() -> None:
    plateau = Plateau(window=5, tolerance=0.01, min_iterations=10)
    falling = [plateau.update(100.0 * 0.9**i) for i in range(30)]
    assert not any(falling)  # 10% per iteration: never a plateau
    flat = Plateau(window=5, tolerance=0.01, min_iterations=10)
    stops = [flat.update(100.0 - 0.01 * i) for i in range(30)]
    assert stops.index(True) == 9  # flat from the start, but not before min_iterations
    noisy = Plateau(window=5, tolerance=0.01, min_iterations=1)
    assert not any(noisy.update(v) for v in [10.0, 50.0, 9.0, 60.0, 8.0])  # only the best loss counts


def test_without_limits_every_scale_runs_its_iterations() -> None:
    clock = Clock()
    schedule = Schedule([1_000_000, 4_000_000], [7, 3], clock=clock)
    assert [run_scale(schedule, clock, i, 1.0, lambda i: 1.0) for i in range(2)] == [7, 3]
    assert schedule.total_iterations == 10


def test_stop_early_ends_a_converged_scale() -> None:
    clock = Clock()
    schedule = Schedule([1_000_000], [500], stop_early=True, clock=clock)
    assert run_scale(schedule, clock, 0, 0.1, lambda i: 1.0) == Plateau().min_iterations


def test_a_time_limit_is_shared_by_cost_and_kept() -> None:
    clock = Clock()
    # Two scales, equal planned cost (100 x 1 MP and 25 x 4 MP); 1 s per megapixel-evaluation.
    schedule = Schedule([1_000_000, 4_000_000], [100, 25], time_limit=60.0, clock=clock)
    first = run_scale(schedule, clock, 0, 1.0, lambda i: 1.0 / (i + 1))
    assert first == 30  # half of the 60 s
    second = run_scale(schedule, clock, 1, 4.0, lambda i: 1.0 / (i + 1))
    assert second == pytest.approx(30 / 4, abs=1)
    assert schedule.elapsed() <= 60.0 + 4.0  # at most one evaluation past the limit


def test_time_a_scale_leaves_passes_to_the_next() -> None:
    clock = Clock()
    schedule = Schedule([1_000_000, 1_000_000], [100, 100], time_limit=100.0, stop_early=True, clock=clock)
    used = run_scale(schedule, clock, 0, 1.0, lambda i: 1.0)  # flat loss: stops at the plateau
    assert used == Plateau().min_iterations
    schedule.start_scale(1)
    assert schedule.planned_iterations(1) == 70  # all 70 s left, at 1 s per iteration


def test_eta_counts_the_remaining_work_at_the_measured_speed() -> None:
    clock = Clock()
    schedule = Schedule([1_000_000, 4_000_000], [10, 10], clock=clock)
    assert schedule.eta() is None  # no speed known yet
    schedule.start_scale(0)
    for _ in range(6):
        clock.now += 2.0  # 2 s per megapixel-evaluation
        schedule.evaluated()
        schedule.iteration_done(1.0)
    # Scale 0: 4 iterations of 2 s left; scale 1: 10 iterations of 8 s.
    assert schedule.eta() == pytest.approx(4 * 2.0 + 10 * 8.0)
    limited = Schedule([1_000_000], [1000], time_limit=30.0, seconds_per_megapixel=1.0, clock=clock)
    limited.start_scale(0)
    # 1.4 evaluations (s) per iteration before any is measured: about 21 iterations fit in 30 s, not
    # the cap; the scale runs until its 30 s are spent, and the ETA says so.
    assert limited.total_iterations == 22  # the one under way counts
    assert limited.eta() == pytest.approx(30.0)
    clock.now += 20.0
    assert limited.eta() == pytest.approx(10.0)


def test_the_eta_of_a_time_limited_run_ends_at_the_limit_not_before() -> None:
    """A tiled 1536 px run under --time-limit 240 showed 'eta 00:00' from 142 s on and ran to 241 s:
    the last scale's planned iterations were rounded down while it kept going to its share's end."""
    clock = Clock()
    schedule = Schedule([250_000, 1_000_000, 4_000_000], [30, 20, 15], time_limit=240.0, clock=clock)
    for scale, seconds_per_evaluation in ((0, 0.5), (1, 2.0)):
        run_scale(schedule, clock, scale, seconds_per_evaluation, lambda i: 1.0 / (i + 1))
    schedule.start_scale(2)
    for evaluation in range(3):
        clock.now += 60.0  # 15 s per megapixel-evaluation at 4 MP: far more than the first scales
        schedule.evaluated()
        if evaluation == 0:
            continue  # a warm-up evaluation: the speed is not measured on it
        assert schedule.eta() == pytest.approx(schedule.time_left(), abs=1e-6)
        assert schedule.planned_iterations(2) > schedule.done[2]  # the iteration under way counts


def test_scale_time_up_checks_within_an_iteration() -> None:
    clock = Clock()
    schedule = Schedule([1_000_000], [1000], time_limit=10.0, clock=clock)
    schedule.start_scale(0)
    assert not schedule.scale_time_up()
    clock.now += 11.0
    assert schedule.scale_time_up() and schedule.expired


def _fake_clock_schedule(monkeypatch: pytest.MonkeyPatch, tick: float) -> list[Schedule]:
    """Make the painter's schedules run on a clock that advances ``tick`` s per reading."""
    import painterly.optimization

    clock = Clock()
    made: list[Schedule] = []

    def ticking() -> float:
        clock.now += tick
        return clock.now

    def schedule(*args, started=None, **kwargs) -> Schedule:  # the painter's real start is not on this clock
        made.append(Schedule(*args, clock=ticking, **kwargs))  # type: ignore[misc]  # no clock in kwargs
        return made[-1]

    monkeypatch.setattr(painterly.optimization, "Schedule", schedule)
    return made


def test_a_time_limited_run_stops_when_time_is_up_and_returns_the_image(monkeypatch) -> None:
    from painterly.optimization import run_transfer
    from painterly.settings import make_settings
    from tests.helpers.images import make_painting, make_photo

    # 80 clock seconds: the first scale's share (a third: 20 of its iterations against 40 at the same
    # size) covers a few evaluations of several clock readings each.
    made = _fake_clock_schedule(monkeypatch, tick=1.0)
    reports: list = []  # Progress reports
    settings = make_settings(size=48, scales=2, time_limit=80.0, device="cpu", precision="fp32")
    result = run_transfer(make_photo(), make_painting(), settings, reports.append)
    assert result.image.size == (48, 36) and not result.interrupted
    (schedule,) = made
    assert 0 < sum(schedule.done) < sum(schedule.iterations)  # stopped by the clock, not the cap
    assert schedule.elapsed() <= 80.0 + 10.0  # a few clock readings per evaluation past the limit
    assert reports[-1].eta_seconds is not None and reports[-1].eta_seconds <= 80.0
    assert reports[-1].step == reports[-1].total_steps  # the closing report: the plan was met


def test_explicit_iterations_are_run_in_full_without_a_limit(monkeypatch) -> None:
    from painterly.optimization import run_transfer
    from painterly.settings import make_settings
    from tests.helpers.images import make_painting, make_photo

    made = _fake_clock_schedule(monkeypatch, tick=1.0)
    settings = make_settings(size=32, iterations=4, device="cpu", precision="fp32")
    reports: list = []  # Progress reports
    run_transfer(make_photo(), make_painting(), settings, reports.append)
    assert (reports[-1].step, reports[-1].total_steps) == (4, 4)
    assert made[0].stop_early is False


def test_the_limit_counts_from_the_given_start() -> None:
    clock = Clock()
    schedule = Schedule([1_000_000], [10], time_limit=10.0, started=clock.now - 8.0, clock=clock)
    assert schedule.time_left() == pytest.approx(2.0)


def test_later_scales_keep_their_plan_while_a_scale_runs_and_gain_what_it_leaves() -> None:
    """The later scales' planned iterations shrank as the running scale spent its own share (57, 47,
    38, then 58 again at the next scale), and the closing report counted too few."""
    clock = Clock()
    schedule = Schedule([1_000_000] * 3, [1000] * 3, time_limit=240.0, seconds_per_megapixel=1.0, clock=clock)
    schedule.start_scale(0)
    plans = []
    for i in range(40):
        clock.now += 1.0
        schedule.evaluated()
        schedule.iteration_done(1.0)
        if i >= 5:  # from here the evaluations per iteration are measured, not the prior's 1.4
            plans.append(schedule.planned_iterations(1))
    assert max(plans) - min(plans) <= 1, plans
    # Scale 0 ends early, 40 s into its 80 s share: its 40 s pass on to the two later scales.
    assert schedule.iterations_from(1) == pytest.approx(2 * 100, abs=2)  # 200 s at 1 s per iteration
    assert schedule.eta(from_scale=1) == pytest.approx(200.0)
