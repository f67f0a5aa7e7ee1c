"""Journey splits as experiments: registered at publish, idempotent across versions, read from step log and ledger."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import sqlalchemy as sa

from marketloop.adapters.duckdb_experiments import DuckDBExperimentWarehouse
from marketloop.adapters.sql.channel_tables import channel_deliveries
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.experiments import SqlExperimentRepository
from marketloop.adapters.sql.journey_experiments import SqlJourneySplits
from marketloop.adapters.sql.journeys import SqlJourneyStore
from marketloop.core.errors import MarketloopError
from marketloop.experiments.service import ExperimentService
from marketloop.journeys.definitions import JourneyDefinitions
from marketloop.journeys.split_experiments import SplitExperiments
from marketloop.ports.experiments import SplitVersion, VariantPlan
from marketloop.ports.journeys import JourneyChange, LogRow
from marketloop.testing.clock import FrozenClock

T0 = datetime(2026, 3, 2, 2, tzinfo=UTC)
SPLIT_ID = "journey:j:split"


@dataclass
class World:
    engine: sa.Engine
    clock: FrozenClock
    definitions: JourneyDefinitions
    repository: SqlExperimentRepository
    splits: SqlJourneySplits


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    upgrade(engine)
    clock = FrozenClock(T0)
    repository, splits = SqlExperimentRepository(engine), SqlJourneySplits(engine)
    definitions = JourneyDefinitions(SqlJourneyStore(engine), clock, splits=SplitExperiments(repository, splits, clock))
    yield World(engine=engine, clock=clock, definitions=definitions, repository=repository, splits=splits)
    engine.dispose()


def _journey(split: dict[str, Any], *, within: str | None = None) -> dict[str, Any]:
    goal: dict[str, Any] = {"event": {"event": "buy"}} | ({"within": within} if within else {})
    names = [v["name"] for v in split["variants"]] + (["holdout"] if split.get("holdout_percent") else [])
    return {
        "id": "j",
        "name": "到期提醒",
        "steps": [
            {
                "id": "entry",
                "type": "entry",
                "settings": {"source": "trigger", "trigger_id": "t"},
                "next": {"next": "split"},
            },
            {"id": "split", "type": "split", "settings": split, "next": dict.fromkeys(names, "done")},
            {"id": "goal", "type": "goal", "settings": goal},
            {"id": "done", "type": "exit"},
        ],
    }


def _publish(world: World, document: dict[str, Any]) -> None:
    replace = world.definitions.store.get("j") is not None
    world.definitions.save(document, replace=replace)
    world.definitions.publish("j")


def test_each_split_is_registered_once_and_follows_new_versions(world: World) -> None:
    _publish(world, _journey({"variants": [{"name": "push"}, {"name": "sms", "weight": 3}], "holdout_percent": 20}))
    first = world.repository.get(SPLIT_ID)
    assert first is not None
    assert (first.kind, first.control, first.journey_id, first.goal, first.window_days) == (
        "journey-split",
        "holdout",
        "j",
        "buy",
        30,
    )
    assert first.variants == (
        VariantPlan(name="push", share=20.0),
        VariantPlan(name="sms", share=60.0),
        VariantPlan(name="holdout", share=20.0),
    )
    world.clock.advance(timedelta(hours=1))
    _publish(world, _journey({"variants": [{"name": "push"}, {"name": "sms", "weight": 3}], "holdout_percent": 20}))
    assert world.repository.get(SPLIT_ID) == first  # the same experiment: the same id keeps customers in their group
    assert [e.experiment_id for e in world.repository.list()] == [SPLIT_ID]

    _publish(world, _journey({"variants": [{"name": "sms"}], "holdout_percent": 10}, within="P3DT1H"))
    changed = world.repository.get(SPLIT_ID)
    assert changed is not None
    assert changed.created_at == first.created_at
    assert changed.window_days == 4
    # the newest plan, and push (assigned under v1 and v2) kept so its customers are still analysed
    assert changed.variants == (
        VariantPlan(name="sms", share=90.0),
        VariantPlan(name="holdout", share=10.0),
        VariantPlan(name="push", share=20.0),
    )
    _publish(world, _journey({"variants": [{"name": "a"}, {"name": "b"}], "seed": "s2"}))
    reseeded = world.repository.get("journey:j:split:s2")
    assert reseeded is not None
    assert reseeded.control == "a"  # no holdout: the first variant is the control
    assert world.repository.get(SPLIT_ID) == changed  # the earlier seed's experiment stays as it was


def _row(
    customer: str, step: str, kind: str, detail: str = "", *, run: int = 1, version: int = 1, days: float = 0
) -> LogRow:
    return LogRow(
        journey_id="j",
        version=version,
        customer=customer,
        run=run,
        step=step,
        kind=kind,
        at=T0 + timedelta(days=days),
        detail=detail,
    )


def _ledger(world: World, key: str, channel: str, status: str) -> None:
    row = {
        "idempotency_key": key,
        "channel": channel,
        "kind": channel,
        "customer": key.split(":")[-1],
        "campaign": "j",
        "status": status,
        "attempts": 1,
        "provider_message_id": key,
        "error": "",
        "parts": 1,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
    }
    with world.engine.begin() as connection:
        connection.execute(channel_deliveries.insert().values(**row))


def test_outcomes_and_touches_come_from_the_step_log_and_the_ledger(world: World) -> None:
    world.splits.link(
        [
            SplitVersion(experiment_id=SPLIT_ID, journey_id="j", version=1, step="split"),
            SplitVersion(experiment_id="journey:j:split:other", journey_id="j", version=2, step="split"),
        ]
    )
    world.splits.link([SplitVersion(experiment_id=SPLIT_ID, journey_id="j", version=1, step="split")])  # idempotent
    log = [
        _row("c1", "pre", "sent", "push j:v1:1:pre:c1"),  # before the split: not the experiment's touch
        _row("c1", "split", "assigned", "b"),
        _row("c1", "push", "sent", "push j:v1:1:push:c1"),
        _row("c1", "goal", "converted", "m1", days=1),
        _row("c2", "split", "assigned", "holdout"),
        _row("c2", "goal", "converted", "m2", days=40),  # outside the 30-day window
        _row("c3", "split", "assigned", "b"),
        _row("c3", "push", "suppressed", "push policy.cap"),
        _row("c3", "push", "sent", "sms j:v1:1:push:c3:f1"),  # the fallback wave went out
        _row("c4", "split", "assigned", "b"),
        _row("c4", "push", "suppressed", "push policy.quiet"),
        _row("c5", "split", "assigned", "b"),
        _row("c5", "push", "failed", "push channel.error"),
        _row("c6", "split", "assigned", "b"),
        _row("c6", "push", "sent", "push j:v1:1:push:c6"),
        _row("c6", "split", "assigned", "b", run=2, days=2),
        _row("c6", "push", "sent", "push j:v1:2:push:c6", run=2, days=2),
        _row("c6", "goal", "converted", "m6", run=2, days=3),
        _row("c7", "split", "assigned", "b", version=2),  # another experiment's version
    ]
    SqlJourneyStore(world.engine).apply(JourneyChange(log=log))
    _ledger(world, "j:v1:1:push:c1", "push", "opened")
    _ledger(world, "j:v1:1:push:c3:f1", "sms", "delivered")
    _ledger(world, "j:v1:1:push:c6", "push", "accepted")
    _ledger(world, "j:v1:2:push:c6", "push", "clicked")

    split = world.splits.outcomes(SPLIT_ID, window_days=30)
    assert split is not None
    found = split.outcomes
    columns = ["cust_no", "variant", "suppressed", "sent", "delivered", "opened", "clicked", "converted", "conversions"]
    assert found.select(columns).rows() == [
        ("c1", "b", 0, 1, 1, 1, 0, 1, 1),
        ("c2", "holdout", 0, 0, 0, 0, 0, 0, 0),
        ("c3", "b", 0, 1, 1, 0, 0, 0, 0),  # suppressed on push, delivered by SMS
        ("c4", "b", 1, 0, 0, 0, 0, 0, 0),
        ("c5", "b", 0, 0, 0, 0, 0, 0, 0),  # a failed send reached no one
        ("c6", "b", 0, 1, 1, 1, 1, 1, 1),  # both runs count; the first assignment is the customer's
    ]
    assert found["assigned_at"].to_list()[-1] == T0
    assert found["period"].unique().to_list() == ["2026-03"]
    assert found.select(pl.sum_horizontal("revenue", "aum", "benefit_cost", "pre_revenue", "pre_aum").sum()).item() == 0
    assert split.touch_counts.rows() == [("b", "2026-03", "push", 3), ("b", "2026-03", "sms", 1)]
    assert world.splits.outcomes("exp_unknown", window_days=30) is None


def test_a_journey_split_report_needs_no_upload(world: World) -> None:
    _publish(world, _journey({"variants": [{"name": "push"}], "holdout_percent": 50}))
    log = [_row(f"c{i}", "split", "assigned", "push" if i % 2 else "holdout") for i in range(40)]
    log += [_row(f"c{i}", "goal", "converted", f"m{i}", days=1) for i in range(0, 40, 3)]
    SqlJourneyStore(world.engine).apply(JourneyChange(log=log))
    con = duckdb.connect()
    try:
        warehouse = DuckDBExperimentWarehouse(lambda: con, threading.Lock())
        service = ExperimentService(
            world.repository, warehouse, world.clock, channel_costs={}, journey_splits=world.splits
        )
        results = service.results(SPLIT_ID)
        assert [m.metric for m in results.analysis.metrics] == ["converted"]
        assert {row.variant: row.stages["converted"] for row in results.funnel} == {"holdout": 7, "push": 7}
        with pytest.raises(MarketloopError) as error:
            service.results(SPLIT_ID, cuped=True)
        assert error.value.code == "experiments.cuped-unavailable"
        assert [r.variant for r in service.compare([SPLIT_ID])][:1] == ["push"]
    finally:
        con.close()


def test_a_goal_value_gives_a_journey_split_revenue_per_customer_and_its_welch_lift(world: World) -> None:
    _publish(world, _journey({"variants": [{"name": "push"}], "holdout_percent": 50}))
    log = [_row(f"c{i}", "split", "assigned", "push" if i % 2 else "holdout") for i in range(40)]
    # push buyers spend 1,000 to 1,900 yuan; holdout buyers 100 to 280; one conversion without a value counts 0
    log += [_row(f"c{i}", "goal", "converted", f"m{i} value={1000.0 + 50 * i!r}", days=1) for i in range(1, 40, 2)]
    log += [_row(f"c{i}", "goal", "converted", f"m{i} value={100.0 + 10 * i!r}", days=1) for i in range(0, 40, 4)]
    log += [_row("c2", "goal", "converted", "m2b", days=2)]
    log += [_row("c1", "goal", "converted", "late value=99999.0", days=40)]  # outside the window: not counted
    SqlJourneyStore(world.engine).apply(JourneyChange(log=log))
    split = world.splits.outcomes(SPLIT_ID, window_days=30)
    assert split is not None
    assert split.metrics == ("converted", "revenue")
    revenue = dict(split.outcomes.select("cust_no", "revenue").iter_rows())
    assert (revenue["c1"], revenue["c2"], revenue["c4"], revenue["c6"]) == (1050.0, 0.0, 140.0, 0.0)
    con = duckdb.connect()
    try:
        warehouse = DuckDBExperimentWarehouse(lambda: con, threading.Lock())
        service = ExperimentService(
            world.repository, warehouse, world.clock, channel_costs={}, journey_splits=world.splits
        )
        results = service.results(SPLIT_ID)
        money = next(m for m in results.analysis.metrics if m.metric == "revenue")
        assert [m.metric for m in results.analysis.metrics] == ["converted", "revenue"]
        assert money.kind == "continuous"
        assert "Welch" in money.test
        means = {v.variant: v.mean for v in money.variants}
        assert means["push"] == pytest.approx(sum(1000.0 + 50 * i for i in range(1, 40, 2)) / 20)
        assert means["holdout"] == pytest.approx(sum(100.0 + 10 * i for i in range(0, 40, 4)) / 20)
        push = next(v for v in money.variants if v.variant == "push")
        assert push.comparison is not None
        assert push.significant
    finally:
        con.close()
