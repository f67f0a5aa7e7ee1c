"""Every journey split and holdout is an experiment: registering them when a journey is published.

`SplitExperiments.register` runs after each publish. For every version of
the journey, each split step becomes (or updates) the experiment its walk
assigns under (`walk.split_experiment`: the same id across versions while the
seed stays, so a customer keeps their group), and the (journey, version,
step) is linked to that experiment, so its report reads the journey's own
step log and delivery receipts (`JourneySplits.outcomes`). The holdout
(对照组) is the control; without one, the first variant is.

Registering is idempotent and repairs itself: publishing again rewrites the
same definitions and links, so a crash between a publish and its
registration is mended by the next publish. When a later version changes a
split, the experiment takes the newest plan; a variant that only earlier
versions had stays in it (with its last share), since customers were
assigned to it and the analysis must still see them.
"""

from __future__ import annotations

import math
from datetime import timedelta

from marketloop.journeys.graph import JourneyGraph, Step, parse_journey, settings_of
from marketloop.journeys.step_types import GoalSettings, SplitSettings
from marketloop.journeys.walk import HOLDOUT, split_experiment, split_plan
from marketloop.ports.clock import Clock
from marketloop.ports.experiments import Experiment, ExperimentRepository, JourneySplits, SplitVersion
from marketloop.ports.journeys import JourneyStore

DEFAULT_WINDOW_DAYS = 30
_GOAL_LENGTH = 64


class SplitExperiments:
    """Registers the split steps of a published journey as experiments and links them to their versions."""

    def __init__(self, repository: ExperimentRepository, splits: JourneySplits, clock: Clock) -> None:
        self._repository = repository
        self._splits = splits
        self._clock = clock

    def register(self, store: JourneyStore, journey_id: str) -> list[Experiment]:
        """Register every split of every published version of `journey_id`; returns the newest version's."""
        links: list[SplitVersion] = []
        newest: list[Experiment] = []
        for record in store.versions(journey_id):  # oldest first: the newest plan is saved last
            graph = parse_journey(record.definition)
            steps = [step for step in graph.steps if step.type == "split"]
            newest = [self._save(graph, step) for step in steps]
            links += [
                SplitVersion(experiment_id=e.experiment_id, journey_id=journey_id, version=record.version, step=s.id)
                for e, s in zip(newest, steps, strict=True)
            ]
        self._splits.link(links)
        return newest

    def _save(self, graph: JourneyGraph, step: Step) -> Experiment:
        settings: SplitSettings = settings_of(step)
        experiment_id = split_experiment(graph.id, step.id, settings.seed)
        existing = self._repository.get(experiment_id)
        plan = split_plan(settings)
        if existing is not None:
            planned = {v.name for v in plan}
            plan += [v for v in existing.variants if v.name not in planned]
        experiment = Experiment(
            experiment_id=experiment_id,
            name=f"{graph.name} · {step.name or step.id}",
            description=f"旅程分流 journey split: journey {graph.id}, step {step.id}",
            kind="journey-split",
            control=HOLDOUT if settings.holdout_percent > 0 else settings.variants[0].name,
            variants=tuple(plan),
            goal=_goal(graph),
            window_days=_window_days(graph),
            campaign=graph.id,
            journey_id=graph.id,
            planned_n=existing.planned_n if existing else None,
            mde_rel=existing.mde_rel if existing else None,
            alpha=existing.alpha if existing else 0.05,
            power=existing.power if existing else 0.8,
            created_at=existing.created_at if existing else self._clock.now(),
        )
        if experiment != existing:
            self._repository.save(experiment)
        return experiment


def _goals(graph: JourneyGraph) -> list[GoalSettings]:
    return [settings_of(step) for step in graph.steps if step.type == "goal"]


def _goal(graph: JourneyGraph) -> str:
    """The events of the journey's goal steps (what its `converted` rows count), e.g. 'wealth_purchase'."""
    names = ", ".join(sorted({goal.event.event for goal in _goals(graph)}))
    return (names or "(no goal step)")[:_GOAL_LENGTH]


def _window_days(graph: JourneyGraph) -> int:
    """Days after the split that conversions count: the longest goal `within`, else 30 days."""
    limits = [goal.within for goal in _goals(graph)]
    if not limits or any(limit is None for limit in limits):
        return DEFAULT_WINDOW_DAYS
    longest = max(limit for limit in limits if limit is not None)
    return max(1, math.ceil(longest / timedelta(days=1)))
