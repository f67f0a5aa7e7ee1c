"""The experiment service: register experiments, record assignments / touches / conversions, compute results.

A journey's split or holdout is registered when the journey is published
(`journeys.split_experiments`) and records nothing here: its results are read
from the journey's step log and delivery receipts (`JourneySplits`). Any other
experiment is filled by `assign`, `record_touches` and `record_conversions`
(the API) or `import_files` (CSV / Parquet). `results` is what the API, the
CLI and the review report (复盘) show; each call is a look at the data and is
remembered for the peeking check.
"""

from __future__ import annotations

import builtins
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.experiments.analyze import Analysis, AnalysisOptions, analyze, invalid
from marketloop.experiments.assignment import assignments_for
from marketloop.experiments.compare import PeriodRow, period_rows
from marketloop.experiments.effect import FunnelRow, RoiRow, channel_costs_of, funnel, roi
from marketloop.experiments.records import assignments_frame, conversions_frame, touches_frame
from marketloop.ports.clock import Clock
from marketloop.ports.experiments import (
    EventConversions,
    Experiment,
    ExperimentKind,
    ExperimentRepository,
    ExperimentWarehouse,
    JourneySplits,
    Look,
    VariantPlan,
)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
METRICS = ("converted", "revenue", "aum")
COVARIATES = {"converted": "pre_revenue", "revenue": "pre_revenue", "aum": "pre_aum"}


@dataclass(frozen=True, kw_only=True)
class ExperimentSpec:
    """What it takes to register an experiment."""

    name: str
    control: str
    variants: dict[str, float]  # name → planned share (weights), the control included
    goal: str
    window_days: int = 30
    campaign: str = ""
    kind: ExperimentKind = "ab"
    description: str = ""
    journey_id: str | None = None
    planned_n: int | None = None
    mde_rel: float | None = None
    alpha: float = 0.05
    power: float = 0.8
    experiment_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExperimentResults:
    experiment: Experiment
    analysed_at: datetime
    analysis: Analysis
    funnel: list[FunnelRow]
    roi: list[RoiRow]
    periods: list[PeriodRow]
    channel_costs: dict[str, float] = field(default_factory=dict)


class ExperimentService:
    def __init__(
        self,
        repository: ExperimentRepository,
        warehouse: ExperimentWarehouse,
        clock: Clock,
        *,
        channel_costs: Mapping[str, float],
        event_conversions: EventConversions | None = None,
        journey_splits: JourneySplits | None = None,
    ) -> None:
        self._event_conversions = event_conversions
        self._journey_splits = journey_splits
        self._repository = repository
        self._warehouse = warehouse
        self._clock = clock
        self._costs = dict(channel_costs)

    def create(self, spec: ExperimentSpec) -> Experiment:
        """Register an experiment; raises invalid for a bad plan, conflict for a taken id."""
        _check_spec(spec)
        experiment = Experiment(
            experiment_id=spec.experiment_id or "exp_" + secrets.token_hex(6),
            name=spec.name,
            description=spec.description,
            kind=spec.kind,
            control=spec.control,
            variants=tuple(VariantPlan(name=name, share=share) for name, share in spec.variants.items()),
            goal=spec.goal,
            window_days=spec.window_days,
            campaign=spec.campaign or spec.name,
            journey_id=spec.journey_id,
            planned_n=spec.planned_n,
            mde_rel=spec.mde_rel,
            alpha=spec.alpha,
            power=spec.power,
            created_at=self._clock.now(),
        )
        self._repository.add(experiment)
        return experiment

    def get(self, experiment_id: str) -> Experiment:
        found = self._repository.get(experiment_id)
        if found is None:
            raise MarketloopError(
                kind=ErrorKind.NOT_FOUND,
                code="experiments.not-found",
                title="No such experiment",
                detail=f"no experiment {experiment_id!r}",
            )
        return found

    def list(self) -> list[Experiment]:
        return self._repository.list()

    def assign(self, experiment_id: str, rows: pl.DataFrame) -> int:
        """Record assignments (cust_no, variant, assigned_at); returns how many were new."""
        experiment = self.get(experiment_id)
        return self._warehouse.add_assignments(assignments_frame(experiment, rows))

    def assign_customers(self, experiment_id: str, cust_nos: Iterable[str]) -> int:
        """Assign customers now by the experiment's deterministic split (what a journey's split step does)."""
        experiment = self.get(experiment_id)
        rows = assignments_for(experiment_id, experiment.variants, cust_nos, self._clock.now())
        return self._warehouse.add_assignments(assignments_frame(experiment, rows))

    def record_touches(self, experiment_id: str, rows: pl.DataFrame) -> int:
        """Record touch stages (touch_id, cust_no, channel, stage, touched_at); returns how many were new."""
        self.get(experiment_id)
        return self._warehouse.add_touches(touches_frame(experiment_id, rows))

    def record_conversions(self, rows: pl.DataFrame) -> int:
        """Record conversions (conversion_id, cust_no, goal, converted_at, revenue, aum, benefit_cost)."""
        return self._warehouse.add_conversions(conversions_frame(rows))

    def conversions_from_events(
        self,
        *,
        event: str,
        goal: str,
        revenue_property: str | None = None,
        aum_property: str | None = None,
        since: datetime | None = None,
    ) -> int:
        """Record conversions of `goal` from tracked `event` events of known customers; returns how many were new."""
        if self._event_conversions is None:
            raise MarketloopError(
                kind=ErrorKind.UNSUPPORTED,
                code="experiments.no-events",
                title="No event store",
                detail="this deployment reads conversions from files and the API only",
            )
        if not event.strip() or not goal.strip():
            raise invalid("conversion-event-invalid", "Name the event and the goal", "both must be non-empty")
        return self._event_conversions.derive(
            event=event, goal=goal, revenue_property=revenue_property, aum_property=aum_property, since=since
        )

    def results(self, experiment_id: str, *, cuped: bool = False, record: bool = True) -> ExperimentResults:
        """Statistics, funnel, ROI and periods of the experiment now; `record` counts this as a look."""
        experiment = self.get(experiment_id)
        outcomes, touch_counts, metrics = self._data(experiment)
        if outcomes.is_empty():
            raise invalid(
                "no-assignments", "The experiment has no customers yet", f"{experiment_id} has no assignments"
            )
        if cuped and metrics != METRICS:
            raise invalid(
                "cuped-unavailable",
                "CUPED needs a pre-period revenue or AUM",
                f"{experiment_id} is a journey split: its journey records no pre-period money",
            )
        looks = [look.customers for look in self._repository.looks(experiment_id)]
        analysis = _analysis(experiment, outcomes, looks, metrics, cuped=cuped)
        variants = analysis.variants
        rows = funnel(outcomes, variants)
        spend = channel_costs_of(touch_counts, self._costs)
        now = self._clock.now()
        if record:
            self._repository.record_look(Look(experiment_id=experiment_id, analysed_at=now, customers=outcomes.height))
        return ExperimentResults(
            experiment=experiment,
            analysed_at=now,
            analysis=analysis,
            funnel=rows,
            roi=roi(outcomes, rows, experiment.control, spend, alpha=experiment.alpha),
            periods=period_rows(experiment, outcomes, touch_counts, self._costs),
            channel_costs=self._costs,
        )

    def compare(self, experiment_ids: builtins.list[str]) -> builtins.list[PeriodRow]:
        """Strategy comparison: every experiment's rows, whole and per period (not counted as looks)."""
        if not experiment_ids:
            raise invalid("compare-empty", "Nothing to compare", "name at least one experiment")
        found: builtins.list[PeriodRow] = []
        for experiment_id in experiment_ids:
            experiment = self.get(experiment_id)
            outcomes, touch_counts, _ = self._data(experiment)
            found += period_rows(experiment, outcomes, touch_counts, self._costs)
        return found

    def _data(self, experiment: Experiment) -> tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]:
        """Per-customer outcomes, sent touches and the metrics they have: a journey split's from its journey."""
        experiment_id = experiment.experiment_id
        if self._journey_splits is not None:
            found = self._journey_splits.outcomes(experiment_id, window_days=experiment.window_days)
            if found is not None:
                return found.outcomes, found.touch_counts, found.metrics
        outcomes = self._warehouse.outcomes(experiment_id, goal=experiment.goal, window_days=experiment.window_days)
        return outcomes, self._warehouse.touch_counts(experiment_id), METRICS


def _analysis(
    experiment: Experiment, outcomes: pl.DataFrame, looks: list[int], metrics: tuple[str, ...], *, cuped: bool
) -> Analysis:
    def options(metrics: tuple[str, ...], covariate: str | None) -> AnalysisOptions:
        return AnalysisOptions(
            variant_col="variant",
            control=experiment.control,
            metrics=metrics,
            covariate=covariate,
            planned_split={v.name: v.share for v in experiment.variants},
            alpha=experiment.alpha,
            power=experiment.power,
            planned_n=experiment.planned_n,
            previous_looks=tuple(looks),
            mde_rel=experiment.mde_rel,
        )

    if not cuped:
        return analyze(outcomes, options(metrics, None))
    parts = [analyze(outcomes, options((metric,), COVARIATES[metric])) for metric in metrics]
    first = parts[0]
    return Analysis(
        control=first.control,
        variants=first.variants,
        alpha=first.alpha,
        srm=first.srm,
        peeking=first.peeking,
        metrics=[metric for part in parts for metric in part.metrics],
        warnings=first.warnings,
    )


def _check_spec(spec: ExperimentSpec) -> None:
    checks = [
        (spec.experiment_id is None or bool(_ID.match(spec.experiment_id)), "experiment_id: letters, digits, _ . -"),
        (bool(spec.name.strip()), "name: must not be empty"),
        (len(spec.variants) >= 2, "variants: at least two (the control and one more)"),
        (
            spec.control in spec.variants,
            f"control: {spec.control!r} is not one of the variants {sorted(spec.variants)}",
        ),
        (all(share > 0 for share in spec.variants.values()), "variants: every planned share must be positive"),
        (bool(spec.goal.strip()), "goal: name the conversion goal"),
        (spec.window_days >= 1, "window_days: at least 1"),
        (0 < spec.alpha < 0.5 and 0.5 <= spec.power < 1, "alpha must be in (0, 0.5) and power in [0.5, 1)"),
        (spec.planned_n is None or spec.planned_n >= 2 * len(spec.variants), "planned_n: at least 2 per variant"),
    ]
    problems = [message for ok, message in checks if not ok]
    if problems:
        raise invalid("invalid-plan", "The experiment is not valid", "; ".join(problems))
