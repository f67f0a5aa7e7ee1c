"""Experiment ports: definitions in the operational store; assignments, touches and conversions in the warehouse.

Every journey split and holdout (对照组) is an experiment. Whoever runs one
(a journey, or an analyst importing files until journeys write them)
registers it in `ExperimentRepository`, then writes to `ExperimentWarehouse`:

- `experiment_assignments`: which customer is in which variant, from when;
- `experiment_touches`: each touch (触达) of the experiment and each stage it
  reached (suppressed by the contact policy, sent, delivered, opened,
  clicked, failed), one row per (touch, stage), as receipts arrive;
- `customer_conversions`: goal events (a wealth purchase, a reinvestment, a
  card activation) with revenue, AUM brought in and the benefit (权益) cost;
  they are not tied to an experiment: an experiment counts a customer's
  conversions of its goal within its window after assignment, so the
  holdout's conversions count although nobody touched them.

A journey's split step is registered when the journey is published
(`JourneySplits.link`) and writes nothing here: its assignments, touches and
conversions are read where the journey keeps them (`JourneySplits.outcomes`:
the journey's step log and the delivery ledger's receipts).

The frames exchanged have the columns listed in each method, with these types.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import polars as pl

ExperimentKind = Literal["ab", "holdout", "journey-split"]
TOUCH_STAGES = ("suppressed", "sent", "delivered", "opened", "clicked", "failed")

ASSIGNMENT_SCHEMA: dict[str, type[pl.DataType] | pl.DataType] = {
    "experiment_id": pl.String,
    "cust_no": pl.String,
    "variant": pl.String,
    "assigned_at": pl.Datetime("us", "UTC"),
}
TOUCH_SCHEMA: dict[str, type[pl.DataType] | pl.DataType] = {
    "experiment_id": pl.String,
    "touch_id": pl.String,
    "cust_no": pl.String,
    "channel": pl.String,
    "stage": pl.String,
    "touched_at": pl.Datetime("us", "UTC"),
}
CONVERSION_SCHEMA: dict[str, type[pl.DataType] | pl.DataType] = {
    "conversion_id": pl.String,
    "cust_no": pl.String,
    "goal": pl.String,
    "converted_at": pl.Datetime("us", "UTC"),
    "revenue": pl.Float64,
    "aum": pl.Float64,
    "benefit_cost": pl.Float64,
}


@dataclass(frozen=True, kw_only=True)
class VariantPlan:
    """A variant and its planned share of the customers (shares of all variants are normalised)."""

    name: str
    share: float


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """An experiment: its variants and control, what counts as a conversion, and its plan."""

    experiment_id: str
    name: str
    description: str
    kind: ExperimentKind
    control: str  # the control / holdout variant
    variants: tuple[VariantPlan, ...]  # the control included
    goal: str  # which `customer_conversions.goal` counts
    window_days: int  # conversions within this many days after assignment
    campaign: str  # campaign or strategy it measures, for comparisons across experiments
    journey_id: str | None  # the journey whose split / holdout registered it; None for imported ones
    planned_n: int | None  # customers planned in all variants together (peeking and power checks)
    mde_rel: float | None  # relative effect it was planned to detect
    alpha: float
    power: float
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class Look:
    """One analysis of an experiment's results: when, and over how many assigned customers."""

    experiment_id: str
    analysed_at: datetime
    customers: int


class ExperimentRepository(Protocol):
    """Durable store of experiment definitions and of each look at their results."""

    def add(self, experiment: Experiment) -> None:
        """Store a new experiment. Raises `MarketloopError` (conflict) when its id exists."""
        ...

    def get(self, experiment_id: str) -> Experiment | None:
        """The experiment, or None."""
        ...

    def list(self) -> list[Experiment]:
        """Every experiment, newest first."""
        ...

    def record_look(self, look: Look) -> None:
        """Remember that the results were looked at (for the peeking check)."""
        ...

    def looks(self, experiment_id: str) -> builtins.list[Look]:
        """Earlier looks at the experiment, oldest first."""
        ...

    def save(self, experiment: Experiment) -> None:
        """Store the experiment, replacing the definition under the same id if there is one (looks are kept)."""
        ...


class ExperimentWarehouse(Protocol):
    """Assignments, touches and conversions in the analytics store, and the per-customer outcomes read from them."""

    def add_assignments(self, rows: pl.DataFrame) -> int:
        """Add rows of ASSIGNMENT_SCHEMA; returns how many were new.

        Idempotent: the first assignment of a customer to an experiment wins,
        and a repeat (same experiment and cust_no) is ignored.
        """
        ...

    def add_touches(self, rows: pl.DataFrame) -> int:
        """Add rows of TOUCH_SCHEMA (stage in TOUCH_STAGES); a repeated (touch_id, stage) is ignored."""
        ...

    def add_conversions(self, rows: pl.DataFrame) -> int:
        """Add rows of CONVERSION_SCHEMA; a repeated conversion_id is ignored."""
        ...

    def assigned(self, experiment_id: str) -> dict[str, int]:
        """Customers per variant."""
        ...

    def outcomes(self, experiment_id: str, *, goal: str, window_days: int) -> pl.DataFrame:
        """One row per assigned customer, in cust_no order, with the columns:

        cust_no, variant, assigned_at, period (the assignment's month, 'YYYY-MM'),
        suppressed, sent, delivered, opened, clicked (Int8 0/1: reached that stage
        with any touch; a later stage implies the earlier ones, `suppressed`
        only when no touch was sent), converted (0/1), conversions, revenue,
        aum, benefit_cost (sums over `goal` conversions in [assigned_at,
        assigned_at + window_days)), pre_revenue, pre_aum (the same sums over
        the window_days before assignment: a CUPED covariate).
        """
        ...

    def touch_counts(self, experiment_id: str) -> pl.DataFrame:
        """Sent touches by variant, period and channel: columns variant, period, channel, touches."""
        ...


class EventConversions(Protocol):
    """Conversions read from tracked events: a purchase or activation event of a known customer is a conversion."""

    def derive(
        self,
        *,
        event: str,
        goal: str,
        revenue_property: str | None = None,
        aum_property: str | None = None,
        since: datetime | None = None,
    ) -> int:
        """Add one conversion of `goal` per `event` event (at or after `since`) whose OneID has a cust_no.

        Revenue and AUM are read from the event's properties (0 when absent or
        not a number). The conversion id is 'event:' + the event's message_id,
        so running again adds only events loaded since. Returns how many were new.
        """
        ...


@dataclass(frozen=True, kw_only=True)
class SplitVersion:
    """A split step of one published journey version, and the experiment it assigns customers under."""

    experiment_id: str
    journey_id: str
    version: int
    step: str


@dataclass(frozen=True, kw_only=True)
class SplitOutcomes:
    """A journey split's per-customer outcomes and its sent touches, in the shapes `ExperimentWarehouse` gives."""

    outcomes: pl.DataFrame  # the columns of `ExperimentWarehouse.outcomes`, one row per assigned customer
    touch_counts: pl.DataFrame  # the columns of `ExperimentWarehouse.touch_counts`
    metrics: tuple[str, ...] = ("converted",)  # what the journey records: conversions, and revenue when valued


class JourneySplits(Protocol):
    """Journey split experiments read from where the journey keeps them: its step log and the delivery ledger."""

    def link(self, splits: Sequence[SplitVersion]) -> None:
        """Remember which experiment each (journey, version, split step) assigns under.

        Idempotent: linking the same (journey, version, step) again keeps one link (the last experiment given).
        """
        ...

    def outcomes(self, experiment_id: str, *, window_days: int) -> SplitOutcomes | None:
        """The outcomes of a linked experiment; None when no journey split is linked to `experiment_id`.

        A customer's variant and `assigned_at` are those of their first `assigned` step-log row at a linked split
        (a customer keeps their group across runs and versions). Touches are the `sent`, `suppressed` and `failed`
        rows that come after an assignment in the same run; a sent touch reaches `delivered`, `opened` or
        `clicked` by its delivery-ledger status (idempotency key `<journey>:v<version>:<run>:<step>:<customer>`,
        fallback waves `…:f<n>`); a failed one reached no one. `converted` / `conversions` count `converted` rows
        (goal reached) after an assignment in the same run and within `window_days` of the first. `revenue` sums the
        money those conversions record (a goal's `value_property`), and `metrics` then includes "revenue"; the
        journey records no other money: aum, benefit_cost and the pre-period columns are 0.
        """
        ...
