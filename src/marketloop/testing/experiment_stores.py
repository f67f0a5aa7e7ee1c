"""In-memory experiment stores (polars), for tests and as a second implementation the contract suite checks."""

from __future__ import annotations

import builtins
from dataclasses import replace

import polars as pl

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.experiments import (
    ASSIGNMENT_SCHEMA,
    CONVERSION_SCHEMA,
    TOUCH_SCHEMA,
    Experiment,
    Look,
)

_RANK = {"sent": 1, "failed": 1, "delivered": 2, "opened": 3, "clicked": 4}
_FLAGS = {"sent": 1, "delivered": 2, "opened": 3, "clicked": 4}


class MemoryExperimentRepository:
    """`ExperimentRepository` in dictionaries."""

    def __init__(self) -> None:
        self._experiments: dict[str, Experiment] = {}
        self._looks: dict[tuple[str, object], Look] = {}

    def add(self, experiment: Experiment) -> None:
        if experiment.experiment_id in self._experiments:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT, code="experiments.exists", title="The experiment exists", detail=""
            )
        self._experiments[experiment.experiment_id] = replace(experiment)

    def get(self, experiment_id: str) -> Experiment | None:
        return self._experiments.get(experiment_id)

    def list(self) -> list[Experiment]:
        by_id = sorted(self._experiments.values(), key=lambda e: e.experiment_id)
        return sorted(by_id, key=lambda e: e.created_at, reverse=True)

    def save(self, experiment: Experiment) -> None:
        self._experiments[experiment.experiment_id] = replace(experiment)

    def record_look(self, look: Look) -> None:
        self._looks.setdefault((look.experiment_id, look.analysed_at), look)

    def looks(self, experiment_id: str) -> builtins.list[Look]:
        return sorted((v for (e, _), v in self._looks.items() if e == experiment_id), key=lambda v: v.analysed_at)


class MemoryExperimentWarehouse:
    """`ExperimentWarehouse` on polars frames."""

    def __init__(self) -> None:
        self._assignments = pl.DataFrame(schema=ASSIGNMENT_SCHEMA)
        self._touches = pl.DataFrame(schema=TOUCH_SCHEMA)
        self._conversions = pl.DataFrame(schema=CONVERSION_SCHEMA)

    @staticmethod
    def _merge(current: pl.DataFrame, rows: pl.DataFrame, keys: list[str]) -> tuple[pl.DataFrame, int]:
        merged = pl.concat([current, rows.select(current.columns).cast(current.schema)])
        merged = merged.unique(subset=keys, keep="first", maintain_order=True)
        return merged, merged.height - current.height

    def add_assignments(self, rows: pl.DataFrame) -> int:
        self._assignments, added = self._merge(self._assignments, rows, ["experiment_id", "cust_no"])
        return added

    def add_touches(self, rows: pl.DataFrame) -> int:
        self._touches, added = self._merge(self._touches, rows, ["touch_id", "stage"])
        return added

    def add_conversions(self, rows: pl.DataFrame) -> int:
        self._conversions, added = self._merge(self._conversions, rows, ["conversion_id"])
        return added

    def assigned(self, experiment_id: str) -> dict[str, int]:
        mine = self._assignments.filter(pl.col("experiment_id") == experiment_id)
        return {str(v): int(n) for v, n in mine.group_by("variant").len().iter_rows()}

    def _assigned_frame(self, experiment_id: str) -> pl.DataFrame:
        return self._assignments.filter(pl.col("experiment_id") == experiment_id).select(
            "cust_no", "variant", "assigned_at", pl.col("assigned_at").dt.strftime("%Y-%m").alias("period")
        )

    def outcomes(self, experiment_id: str, *, goal: str, window_days: int) -> pl.DataFrame:
        assigned = self._assigned_frame(experiment_id)
        window = pl.duration(days=window_days)
        touches = (
            self._touches.filter(pl.col("experiment_id") == experiment_id)
            .group_by("cust_no")
            .agg(
                pl.col("stage").replace_strict(_RANK, default=0, return_dtype=pl.Int64).max().alias("furthest"),
                (pl.col("stage") == "suppressed").any().alias("any_suppressed"),
            )
        )
        joined = assigned.join(self._conversions.filter(pl.col("goal") == goal), on="cust_no", how="inner")
        at, start = pl.col("converted_at"), pl.col("assigned_at")
        inside = (at >= start) & (at < start + window)
        before = (at < start) & (at >= start - window)
        sums = joined.group_by("cust_no").agg(
            inside.sum().alias("conversions"),
            *[pl.col(c).filter(inside).sum().alias(c) for c in ("revenue", "aum", "benefit_cost")],
            pl.col("revenue").filter(before).sum().alias("pre_revenue"),
            pl.col("aum").filter(before).sum().alias("pre_aum"),
        )
        found = assigned.join(touches, on="cust_no", how="left").join(sums, on="cust_no", how="left")
        furthest = pl.col("furthest").fill_null(0)
        flags = [(furthest >= rank).cast(pl.Int8).alias(stage) for stage, rank in _FLAGS.items()]
        money = ["revenue", "aum", "benefit_cost", "pre_revenue", "pre_aum"]
        return found.select(
            "cust_no",
            "variant",
            "assigned_at",
            "period",
            (pl.col("any_suppressed").fill_null(False) & (furthest == 0)).cast(pl.Int8).alias("suppressed"),
            *flags,
            (pl.col("conversions").fill_null(0) > 0).cast(pl.Int8).alias("converted"),
            pl.col("conversions").fill_null(0).cast(pl.Int64),
            *[pl.col(c).fill_null(0.0).cast(pl.Float64) for c in money],
        ).sort("cust_no")

    def touch_counts(self, experiment_id: str) -> pl.DataFrame:
        sent = self._touches.filter(
            (pl.col("experiment_id") == experiment_id) & pl.col("stage").is_in(list(_RANK))
        ).join(self._assigned_frame(experiment_id), on="cust_no", how="inner")
        return (
            sent.group_by("variant", "period", "channel")
            .agg(pl.col("touch_id").n_unique().cast(pl.Int64).alias("touches"))
            .sort("variant", "period", "channel")
        )
