"""The contracts of the experiment ports, as tests that every adapter must pass.

A test module imports the tests and provides `experiment_warehouse` and
`experiment_repository` fixtures returning empty stores of the adapter
under test (see `tests/contract/test_experiment_stores.py`):

    from marketloop.testing.contracts.experiments import *  # noqa: F403
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from marketloop.core.errors import MarketloopError
from marketloop.ports.experiments import Experiment, ExperimentRepository, ExperimentWarehouse, Look, VariantPlan

__all__ = [
    "test_conversions_count_only_in_the_window_and_for_the_goal",
    "test_experiments_are_listed_newest_first_and_ids_are_unique",
    "test_funnel_flags_follow_the_furthest_stage",
    "test_looks_are_kept_oldest_first",
    "test_save_creates_or_replaces_and_keeps_the_looks",
    "test_touch_counts_are_sent_touches_by_variant_period_and_channel",
    "test_writes_are_idempotent",
]

T0 = datetime(2026, 3, 31, 12, tzinfo=UTC)
TIME = pl.Datetime("us", "UTC")


def _assignments(rows: list[tuple[str, str, datetime]], experiment_id: str = "e1") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "experiment_id": [experiment_id] * len(rows),
            "cust_no": [r[0] for r in rows],
            "variant": [r[1] for r in rows],
            "assigned_at": pl.Series([r[2] for r in rows], dtype=TIME),
        }
    )


def _touches(rows: list[tuple[str, str, str, str]], experiment_id: str = "e1") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "experiment_id": [experiment_id] * len(rows),
            "touch_id": [r[0] for r in rows],
            "cust_no": [r[1] for r in rows],
            "channel": [r[2] for r in rows],
            "stage": [r[3] for r in rows],
            "touched_at": pl.Series([T0] * len(rows), dtype=TIME),
        }
    )


def _conversions(rows: list[tuple[str, str, str, datetime, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "conversion_id": [r[0] for r in rows],
            "cust_no": [r[1] for r in rows],
            "goal": [r[2] for r in rows],
            "converted_at": pl.Series([r[3] for r in rows], dtype=TIME),
            "revenue": [r[4] for r in rows],
            "aum": [r[4] * 100 for r in rows],
            "benefit_cost": [1.0] * len(rows),
        }
    )


def test_writes_are_idempotent(experiment_warehouse: ExperimentWarehouse) -> None:
    first = _assignments([("c1", "holdout", T0), ("c2", "push", T0), ("c2", "push", T0)])
    assert experiment_warehouse.add_assignments(first) == 2
    assert experiment_warehouse.add_assignments(_assignments([("c1", "push", T0), ("c3", "push", T0)])) == 1
    assert experiment_warehouse.assigned("e1") == {"holdout": 1, "push": 2}
    touches = _touches([("t1", "c2", "push", "sent"), ("t1", "c2", "push", "sent")])
    assert experiment_warehouse.add_touches(touches) == 1
    assert experiment_warehouse.add_touches(touches) == 0
    conversions = _conversions([("v1", "c1", "buy", T0, 1.0)])
    assert experiment_warehouse.add_conversions(conversions) == 1
    assert experiment_warehouse.add_conversions(conversions) == 0
    assert experiment_warehouse.add_assignments(first.head(0)) == 0


def test_conversions_count_only_in_the_window_and_for_the_goal(experiment_warehouse: ExperimentWarehouse) -> None:
    experiment_warehouse.add_assignments(_assignments([("c2", "push", T0), ("c1", "holdout", T0)]))
    experiment_warehouse.add_assignments(_assignments([("c1", "push", T0)], experiment_id="other"))
    experiment_warehouse.add_conversions(
        _conversions(
            [
                ("in", "c1", "buy", T0 + timedelta(days=6, hours=23), 10.0),
                ("edge", "c1", "buy", T0 + timedelta(days=7), 20.0),  # the window is half-open
                ("start", "c2", "buy", T0, 5.0),
                ("goal", "c2", "card", T0 + timedelta(days=1), 99.0),
                ("pre", "c2", "buy", T0 - timedelta(days=3), 7.0),
                ("old", "c2", "buy", T0 - timedelta(days=8), 70.0),
            ]
        )
    )
    found = experiment_warehouse.outcomes("e1", goal="buy", window_days=7)
    assert found["cust_no"].to_list() == ["c1", "c2"]
    assert found["variant"].to_list() == ["holdout", "push"]
    assert found["period"].to_list() == ["2026-03", "2026-03"]
    assert found["converted"].to_list() == [1, 1]
    assert found["conversions"].to_list() == [1, 1]
    assert found["revenue"].to_list() == [10.0, 5.0]
    assert found["aum"].to_list() == [1000.0, 500.0]
    assert found["benefit_cost"].to_list() == [1.0, 1.0]
    assert found["pre_revenue"].to_list() == [0.0, 7.0]
    assert found["pre_aum"].to_list() == [0.0, 700.0]
    assert experiment_warehouse.outcomes("none", goal="buy", window_days=7).height == 0


def test_funnel_flags_follow_the_furthest_stage(experiment_warehouse: ExperimentWarehouse) -> None:
    experiment_warehouse.add_assignments(_assignments([(c, "push", T0) for c in ("a", "b", "c", "d", "e")]))
    experiment_warehouse.add_touches(
        _touches(
            [
                ("t1", "a", "push", "clicked"),  # a click without other receipts still counts as sent to clicked
                ("t2", "b", "sms", "sent"),
                ("t2", "b", "sms", "failed"),
                ("t3", "c", "push", "suppressed"),
                ("t4", "d", "push", "suppressed"),
                ("t5", "d", "sms", "delivered"),
            ]
        )
    )
    found = experiment_warehouse.outcomes("e1", goal="buy", window_days=7)
    columns = ["suppressed", "sent", "delivered", "opened", "clicked", "converted"]
    assert found.select(columns).rows() == [
        (0, 1, 1, 1, 1, 0),
        (0, 1, 0, 0, 0, 0),
        (1, 0, 0, 0, 0, 0),
        (0, 1, 1, 0, 0, 0),  # suppressed on one channel, delivered on another
        (0, 0, 0, 0, 0, 0),
    ]


def test_touch_counts_are_sent_touches_by_variant_period_and_channel(
    experiment_warehouse: ExperimentWarehouse,
) -> None:
    april = T0 + timedelta(days=1)
    experiment_warehouse.add_assignments(_assignments([("a", "push", T0), ("b", "push", april), ("c", "sms", T0)]))
    experiment_warehouse.add_touches(
        _touches(
            [
                ("t1", "a", "push", "sent"),
                ("t1", "a", "push", "opened"),
                ("t2", "b", "push", "sent"),
                ("t3", "c", "sms", "suppressed"),
                ("t4", "c", "sms", "sent"),
            ]
        )
    )
    found = experiment_warehouse.touch_counts("e1").sort(["variant", "period", "channel"])
    assert found.rows() == [
        ("push", "2026-03", "push", 1),
        ("push", "2026-04", "push", 1),
        ("sms", "2026-03", "sms", 1),
    ]


def _experiment(experiment_id: str, created_at: datetime) -> Experiment:
    return Experiment(
        experiment_id=experiment_id,
        name="到期挽留",
        description="",
        kind="holdout",
        control="holdout",
        variants=(VariantPlan(name="holdout", share=1.0), VariantPlan(name="push", share=4.0)),
        goal="buy",
        window_days=7,
        campaign="maturity",
        journey_id="j1",
        planned_n=1000,
        mde_rel=0.1,
        alpha=0.05,
        power=0.8,
        created_at=created_at,
    )


def test_experiments_are_listed_newest_first_and_ids_are_unique(
    experiment_repository: ExperimentRepository,
) -> None:
    experiment_repository.add(_experiment("e1", T0))
    experiment_repository.add(_experiment("e2", T0 + timedelta(hours=1)))
    assert [e.experiment_id for e in experiment_repository.list()] == ["e2", "e1"]
    assert experiment_repository.get("e1") == _experiment("e1", T0)
    assert experiment_repository.get("nope") is None
    with pytest.raises(MarketloopError):
        experiment_repository.add(_experiment("e1", T0))


def test_looks_are_kept_oldest_first(experiment_repository: ExperimentRepository) -> None:
    experiment_repository.add(_experiment("e1", T0))
    later = Look(experiment_id="e1", analysed_at=T0 + timedelta(days=2), customers=300)
    earlier = Look(experiment_id="e1", analysed_at=T0 + timedelta(days=1), customers=100)
    experiment_repository.record_look(later)
    experiment_repository.record_look(earlier)
    experiment_repository.record_look(earlier)
    assert experiment_repository.looks("e1") == [earlier, later]
    assert experiment_repository.looks("e2") == []


def test_save_creates_or_replaces_and_keeps_the_looks(experiment_repository: ExperimentRepository) -> None:
    long_id = "journey:" + "j" * 40 + ":" + "s" * 40 + ":seed"  # a journey split's id is longer than an import's
    first = _experiment(long_id, T0)
    experiment_repository.save(first)
    assert experiment_repository.get(long_id) == first
    look = Look(experiment_id=long_id, analysed_at=T0 + timedelta(days=1), customers=10)
    experiment_repository.record_look(look)
    changed = replace(first, variants=(VariantPlan(name="holdout", share=1.0), VariantPlan(name="push", share=9.0)))
    experiment_repository.save(changed)
    experiment_repository.save(changed)
    assert experiment_repository.get(long_id) == changed
    assert [e.experiment_id for e in experiment_repository.list()] == [long_id]
    assert experiment_repository.looks(long_id) == [look]
