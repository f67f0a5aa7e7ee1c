"""`JourneySplits` on SQL: journey split experiments read from the journey's step log and the delivery ledger.

A split step writes no experiment rows of its own. Publishing links each
(journey, version, split step) to its experiment in `journey_split_versions`
(migration 0013); the outcomes are then read from `journey_step_log`
(`assigned`, `sent`, `suppressed`, `failed`, `converted` rows; a conversion's money, when its goal names a
`value_property`, is in the `converted` row's detail as ` value=<number>`) and from
`channel_deliveries` (how far each sent touch got, by its idempotency key
`<journey>:v<version>:<run>:<step>:<customer>`, `…:f<n>` for fallback waves).
Both tables live in this operational store, so nothing is copied and nothing
can drift: the report shows what the journey did.

The rows of the journey are read once (by the index on journey_id) and joined
in polars, which keeps the work linear where a per-customer SQL join on
SQLite would not be.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import polars as pl
import sqlalchemy as sa

from marketloop.adapters.sql.channel_tables import channel_deliveries, ensure_channel_tables
from marketloop.adapters.sql.journeys import journey_step_log
from marketloop.adapters.sql.realtime import _Dialect
from marketloop.adapters.sql.tables import metadata
from marketloop.core.events import as_utc
from marketloop.ports.experiments import SplitOutcomes, SplitVersion

journey_split_versions = sa.Table(
    "journey_split_versions",
    metadata,
    sa.Column("journey_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("step", sa.String(40), primary_key=True),
    sa.Column("experiment_id", sa.String(200), nullable=False),
    sa.Index("ix_journey_split_versions_experiment", "experiment_id"),
)

_TIME = pl.Datetime("us", "UTC")
_TOUCH_KINDS = ("sent", "suppressed", "failed")
# How far a sent touch got by its ledger status (later states imply the earlier ones); any other status: sent (1).
_REACHED = {"delivered": 2, "unsubscribed": 2, "opened": 3, "clicked": 4}
_STAGES = {"sent": 1, "delivered": 2, "opened": 3, "clicked": 4}
_MONEY = ("revenue", "aum", "benefit_cost", "pre_revenue", "pre_aum")
_LOG_SCHEMA: dict[str, type[pl.DataType] | pl.DataType] = {
    "id": pl.Int64,
    "journey_id": pl.String,
    "version": pl.Int64,
    "customer": pl.String,
    "run": pl.Int64,
    "step": pl.String,
    "kind": pl.String,
    "detail": pl.String,
    "at": _TIME,
}


class SqlJourneySplits(_Dialect):
    """Split links in `journey_split_versions`; outcomes from `journey_step_log` and `channel_deliveries`."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(engine)
        ensure_channel_tables(engine)  # the ledger is created with the channels; a journey may not have sent yet

    def link(self, splits: Sequence[SplitVersion]) -> None:
        if not splits:
            return
        with self._engine.begin() as connection:
            for split in splits:
                insert = self.insert(journey_split_versions).values(
                    journey_id=split.journey_id,
                    version=split.version,
                    step=split.step,
                    experiment_id=split.experiment_id,
                )
                connection.execute(
                    insert.on_conflict_do_update(
                        index_elements=["journey_id", "version", "step"],
                        set_={"experiment_id": insert.excluded.experiment_id},
                    )
                )

    def outcomes(self, experiment_id: str, *, window_days: int) -> SplitOutcomes | None:
        found = self._read(experiment_id)
        if found is None:
            return None
        first, after = found
        return SplitOutcomes(
            outcomes=_outcomes(first, after, window_days),
            touch_counts=_touch_counts(first, after),
            metrics=_metrics(after),
        )

    def _read(self, experiment_id: str) -> tuple[pl.DataFrame, pl.DataFrame] | None:
        """(first assignment of each customer, touches and conversions after an assignment in the same run)."""
        links = self._links(experiment_id)
        if links.is_empty():
            return None
        journeys = sorted(set(links["journey_id"].to_list()))
        log = self._log(journeys)
        assigned = (
            log.filter(pl.col("kind") == "assigned")
            .join(links, on=["journey_id", "version", "step"])
            .sort("id")
            .unique(subset=["journey_id", "customer", "run"], keep="first", maintain_order=True)
        )
        first = assigned.unique(subset="customer", keep="first", maintain_order=True).select(
            "customer", pl.col("detail").alias("variant"), pl.col("at").alias("assigned_at")
        )
        runs = assigned.select("journey_id", "customer", "run", pl.col("id").alias("assigned_id"))
        after = (
            log.filter(pl.col("kind").is_in([*_TOUCH_KINDS, "converted"]))
            .join(runs, on=["journey_id", "customer", "run"])
            .filter(pl.col("id") > pl.col("assigned_id"))
        )
        return first, self._with_receipts(after, journeys)

    def _links(self, experiment_id: str) -> pl.DataFrame:
        table = journey_split_versions.c
        query = sa.select(table.journey_id, table.version, table.step).where(table.experiment_id == experiment_id)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return pl.DataFrame(
            [tuple(row) for row in rows],
            schema={"journey_id": pl.String, "version": pl.Int64, "step": pl.String},
            orient="row",
        )

    def _log(self, journeys: list[str]) -> pl.DataFrame:
        log = journey_step_log.c
        query = sa.select(
            log.id, log.journey_id, log.version, log.customer, log.run, log.step, log.kind, log.detail, log.at
        ).where(log.journey_id.in_(journeys), log.kind.in_(["assigned", *_TOUCH_KINDS, "converted"]))
        with self._engine.connect() as connection:
            rows = [(*row[:8], as_utc(row[8])) for row in connection.execute(query)]
        return pl.DataFrame(rows, schema=_LOG_SCHEMA, orient="row")

    def _with_receipts(self, after: pl.DataFrame, journeys: list[str]) -> pl.DataFrame:
        """`reached` (1 sent … 4 clicked, 0 for other rows) and `touch_channel` of every sent row, from the ledger."""
        keyed = after.with_columns(
            pl.format("{}:v{}:{}:{}:{}", "journey_id", "version", "run", "step", "customer").alias("touch_key"),
            pl.col("detail").str.split(" ").list.first().alias("detail_channel"),
        )
        receipts = self._receipts(journeys)
        return keyed.join(receipts, on="touch_key", how="left").with_columns(
            pl.when(pl.col("kind") == "sent")
            .then(pl.max_horizontal(pl.col("ledger_reached").fill_null(1), pl.lit(1)))
            .otherwise(0)
            .alias("reached"),
            pl.coalesce("ledger_channel", "detail_channel").alias("touch_channel"),
        )

    def _receipts(self, journeys: list[str]) -> pl.DataFrame:
        """Per touch key (fallback waves folded in): the furthest ledger status and the channel it went out on."""
        d = channel_deliveries.c
        query = sa.select(d.idempotency_key, d.channel, d.status).where(
            sa.or_(*[d.idempotency_key.like(f"{journey}:v%") for journey in journeys])
        )
        with self._engine.connect() as connection:
            rows = [tuple(row) for row in connection.execute(query)]
        ledger = pl.DataFrame(rows, schema={"key": pl.String, "channel": pl.String, "status": pl.String}, orient="row")
        return (
            ledger.with_columns(
                pl.col("key").str.replace(r":f\d+$", "").alias("touch_key"),
                pl.col("status").replace_strict(_REACHED, default=1, return_dtype=pl.Int64).alias("rank"),
            )
            .sort("rank", descending=True)
            .group_by("touch_key", maintain_order=True)
            .agg(pl.col("rank").first().alias("ledger_reached"), pl.col("channel").first().alias("ledger_channel"))
        )


def _outcomes(first: pl.DataFrame, after: pl.DataFrame, window_days: int) -> pl.DataFrame:
    touches = (
        after.filter(pl.col("kind").is_in(_TOUCH_KINDS))
        .group_by("customer")
        .agg(pl.col("reached").max().alias("furthest"), (pl.col("kind") == "suppressed").any().alias("any_suppressed"))
    )
    window = timedelta(days=window_days)
    conversions = (
        after.filter(pl.col("kind") == "converted")
        .join(first.select("customer", "assigned_at"), on="customer")
        .filter((pl.col("at") >= pl.col("assigned_at")) & (pl.col("at") < pl.col("assigned_at") + window))
        .group_by("customer")
        .agg(pl.len().cast(pl.Int64).alias("conversions"), _value().sum().alias("revenue"))
    )
    furthest = pl.col("furthest").fill_null(0)
    return (
        first.join(touches, on="customer", how="left")
        .join(conversions, on="customer", how="left")
        .sort("customer")
        .select(
            pl.col("customer").alias("cust_no"),
            "variant",
            "assigned_at",
            pl.col("assigned_at").dt.strftime("%Y-%m").alias("period"),
            (pl.col("any_suppressed").fill_null(False) & (furthest == 0)).cast(pl.Int8).alias("suppressed"),
            *[(furthest >= rank).cast(pl.Int8).alias(stage) for stage, rank in _STAGES.items()],
            (pl.col("conversions").fill_null(0) > 0).cast(pl.Int8).alias("converted"),
            pl.col("conversions").fill_null(0),
            pl.col("revenue").fill_null(0.0),
            *[pl.lit(0.0).alias(name) for name in _MONEY if name != "revenue"],
        )
    )


def _value() -> pl.Expr:
    """The money a `converted` row records (` value=<number>` after the message id, when the goal names a
    `value_property`); 0 when it records none."""
    return pl.col("detail").str.extract(r" value=(\S+)$").cast(pl.Float64, strict=False).fill_null(0.0)


def _metrics(after: pl.DataFrame) -> tuple[str, ...]:
    """Conversion, and revenue per customer when the journey's goal records the conversions' money."""
    valued = after.filter((pl.col("kind") == "converted") & pl.col("detail").str.contains(" value=")).height
    return ("converted", "revenue") if valued else ("converted",)


def _touch_counts(first: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    return (
        after.filter(pl.col("kind") == "sent")
        .join(first.select("customer", "variant", "assigned_at"), on="customer")
        .group_by("variant", pl.col("assigned_at").dt.strftime("%Y-%m").alias("period"), pl.col("touch_channel"))
        .agg(pl.len().cast(pl.Int64).alias("touches"))
        .select("variant", "period", pl.col("touch_channel").alias("channel"), "touches")
        .sort("variant", "period", "channel")
    )
