"""A holdout must stay in the journey as long as its conversions are counted (checked at publish).

A split with a holdout (对照组) is an experiment whose report counts the
goal's conversions within the goal's window (`within`, else the experiment's
default window). Conversions are recorded only while a customer's run is
open: a holdout path that reaches an exit sooner loses the holdout's later
conversions, while the variants, which wait for their touches to work, keep
theirs, so the lift would be overstated. `holdout_problems` finds, for every
split with a holdout in a journey with a goal, the quickest way from its
holdout outcome to an exit (waits count their duration or timeout; a wait for
a local time of day or an event may end at once) and reports the exit when
it comes before the holdout must leave: when the goal's window is over, or
when the variants' customers can have left too (the longest way from a
variant to an exit), whichever is sooner: both groups are then watched
equally long. The fix is a wait on the holdout path that long.
"""

from __future__ import annotations

import heapq
from datetime import timedelta

from marketloop.core.errors import FieldError
from marketloop.journeys.graph import JourneyGraph, Step, settings_of
from marketloop.journeys.split_experiments import DEFAULT_WINDOW_DAYS
from marketloop.journeys.step_types import GoalSettings, WaitSettings
from marketloop.journeys.walk import HOLDOUT


def holdout_problems(graph: JourneyGraph) -> list[FieldError]:
    """Each holdout path that exits before the goal window ends, pointing at that exit step."""
    goals: list[GoalSettings] = [settings_of(step) for step in graph.steps if step.type == "goal"]
    if not goals:
        return []
    limits = [goal.within for goal in goals if goal.within is not None]
    window = max(limits) if len(limits) == len(goals) else timedelta(days=DEFAULT_WINDOW_DAYS)
    index = {step.id: number for number, step in enumerate(graph.steps)}
    by_id = {step.id: step for step in graph.steps}
    problems: list[FieldError] = []
    for step in graph.steps:
        if step.type != "split" or settings_of(step).holdout_percent <= 0:
            continue
        variants = [target for outcome, target in step.next.items() if outcome != HOLDOUT]
        known: dict[str, timedelta] = {}
        watched = max((_longest_stay(by_id, target, set(), known) for target in variants), default=timedelta(0))
        needed = min(window, watched)
        found = _quickest_exit(by_id, step.next[HOLDOUT])
        if found is not None and found[0] < needed:
            after, exit_id = found
            problems.append(
                FieldError(
                    pointer=f"/steps/{index[exit_id]}",
                    detail=(
                        f"the holdout of split {step.id!r} reaches exit {exit_id!r} after {_days(after)}, but the "
                        f"goal counts conversions for {_days(window)} and the variants stay up to {_days(watched)}: "
                        f"the holdout's later conversions would be lost and the lift overstated; wait "
                        f"{_days(needed)} on the holdout path before it exits"
                    ),
                )
            )
    return problems


def _longest_stay(steps: dict[str, Step], step_id: str, path: set[str], known: dict[str, timedelta]) -> timedelta:
    """The longest a customer at `step_id` can stay before an exit, going round no loop (a loop goes through a
    wait: it could last for ever, and is counted once). `known`: what was worked out (each step once)."""
    step = steps[step_id]
    if step.type == "exit" or step_id in path:
        return timedelta(0)
    if step_id not in known:
        path.add(step_id)
        known[step_id] = max(
            (
                _most_time(step, outcome) + _longest_stay(steps, target, path, known)
                for outcome, target in step.next.items()
            ),
            default=timedelta(0),
        )
        path.remove(step_id)
    return known[step_id]


def _quickest_exit(steps: dict[str, Step], start: str) -> tuple[timedelta, str] | None:
    """(the least time in which a customer at `start` can reach an exit, that exit), or None when none is reached."""
    queue: list[tuple[timedelta, str]] = [(timedelta(0), start)]
    done: set[str] = set()
    while queue:
        spent, step_id = heapq.heappop(queue)
        if step_id in done:
            continue
        done.add(step_id)
        step = steps[step_id]
        if step.type == "exit":
            return spent, step_id
        for outcome, target in step.next.items():
            if target not in done:
                heapq.heappush(queue, (spent + _least_time(step, outcome), target))
    return None


def _most_time(step: Step, outcome: str) -> timedelta:
    """The most time a customer spends at `step` before leaving by `outcome` (a time of day: up to a day)."""
    if step.type != "wait":
        return timedelta(0)
    wait: WaitSettings = settings_of(step)
    if wait.duration is not None:
        return wait.duration
    if wait.until is not None:
        return timedelta(days=1)
    return wait.timeout or timedelta(0)


def _least_time(step: Step, outcome: str) -> timedelta:
    """The least time a customer spends at `step` before leaving by `outcome`."""
    if step.type != "wait":
        return timedelta(0)
    wait: WaitSettings = settings_of(step)
    if wait.duration is not None:
        return wait.duration
    if wait.event is not None and outcome == "timeout" and wait.timeout is not None:
        return wait.timeout
    return timedelta(0)  # an awaited event may come at once; a time of day may be a minute away


def _days(length: timedelta) -> str:
    days = length / timedelta(days=1)
    return f"{days:g} days" if days != 1 else "1 day"
