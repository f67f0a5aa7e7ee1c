"""The experiment service end to end on real stores: register, record, results, ROI, periods, looks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.experiments.service import ExperimentService, ExperimentSpec
from marketloop.testing.clock import FrozenClock
from marketloop.testing.experiments import simulate_campaign

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def spec(**overrides: object) -> ExperimentSpec:
    given: dict[str, object] = {
        "name": "理财到期挽留",
        "control": "holdout",
        "variants": {"holdout": 20, "push": 80},
        "goal": "wealth_purchase",
        "window_days": 30,
        "experiment_id": "exp_maturity",
    }
    return ExperimentSpec(**(given | overrides))  # type: ignore[arg-type]


def small_experiment(service: ExperimentService) -> None:
    service.create(spec(variants={"holdout": 1, "push": 1}))
    service.assign(
        "exp_maturity",
        pl.DataFrame(
            {
                "cust_no": ["c1", "c2", "c3", "c4", "c5", "c6"],
                "variant": ["holdout", "holdout", "holdout", "push", "push", "push"],
                "assigned_at": [T0.isoformat()] * 6,
            }
        ),
    )
    touches = [("t4", "c4", "sent"), ("t4", "c4", "delivered"), ("t4", "c4", "opened"), ("t4", "c4", "clicked")]
    touches += [("t5", "c5", "sent"), ("t5", "c5", "failed"), ("t6", "c6", "suppressed")]
    service.record_touches(
        "exp_maturity",
        pl.DataFrame(
            {
                "touch_id": [t[0] for t in touches],
                "cust_no": [t[1] for t in touches],
                "channel": "push",
                "stage": [t[2] for t in touches],
                "touched_at": [T0] * len(touches),
            }
        ),
    )
    service.record_conversions(
        pl.DataFrame(
            {
                "conversion_id": ["a", "b", "c", "d", "e"],
                "cust_no": ["c1", "c4", "c5", "c4", "c2"],
                "goal": ["wealth_purchase", "wealth_purchase", "wealth_purchase", "wealth_purchase", "card"],
                "converted_at": [T0 + timedelta(days=d) for d in (3, 1, 2, 40, 1)],
                "revenue": [100.0, 200.0, 300.0, 999.0, 50.0],
                "aum": [10_000.0, 20_000.0, 30_000.0, 1.0, 0.0],
                "benefit_cost": [0.0, 5.0, 5.0, 0.0, 0.0],
            }
        ),
    )


def test_funnel_counts_each_stage_by_hand(service: ExperimentService) -> None:
    small_experiment(service)
    results = service.results("exp_maturity")
    holdout, push = results.funnel
    assert (holdout.targeted, holdout.stages["sent"], holdout.stages["converted"]) == (3, 0, 1)
    assert push.stages == {
        "suppressed": 1,
        "sent": 2,
        "delivered": 1,
        "opened": 1,
        "clicked": 1,
        "converted": 2,
    }
    assert push.conversion_rate == pytest.approx(2 / 3)
    assert push.revenue_per_customer == pytest.approx(500 / 3)  # the day-40 purchase is outside the window
    assert holdout.aum_per_customer == pytest.approx(10_000 / 3)  # the card conversion is another goal
    (gain,) = results.roi
    assert gain.touches == 2
    assert gain.channel_cost == pytest.approx(0.02)
    assert gain.benefit_cost == pytest.approx(10.0)
    assert gain.incremental_revenue == pytest.approx((500 / 3 - 100 / 3) * 3)
    assert gain.incremental_conversions == pytest.approx(1.0)
    assert gain.roi == pytest.approx((400 - 10.02) / 10.02)


def test_records_are_idempotent(service: ExperimentService) -> None:
    small_experiment(service)
    again = pl.DataFrame({"cust_no": ["c1", "c7"], "variant": ["push", "push"], "assigned_at": [T0, T0]})
    assert service.assign("exp_maturity", again) == 1  # c1 keeps its first variant
    assert service.results("exp_maturity").funnel[0].targeted == 3


def test_simulated_campaign_recovers_the_true_effect(service: ExperimentService) -> None:
    campaign = simulate_campaign(20261124, 20_000)
    service.create(spec())
    service.assign("exp_maturity", campaign.assignments)
    service.record_touches("exp_maturity", campaign.touches)
    service.record_conversions(campaign.conversions)
    plain = service.results("exp_maturity")
    adjusted = service.results("exp_maturity", cuped=True)
    rate = plain.analysis.metrics[0].variants[1].comparison
    assert rate is not None
    assert rate.ci_low <= campaign.true_rate_lift <= rate.ci_high
    revenue, revenue_cuped = plain.analysis.metrics[1].variants[1], adjusted.analysis.metrics[1].variants[1]
    assert revenue.comparison is not None
    assert revenue_cuped.comparison is not None
    assert revenue.comparison.ci_low <= campaign.true_revenue_lift <= revenue.comparison.ci_high
    assert revenue_cuped.comparison.ci_low <= campaign.true_revenue_lift <= revenue_cuped.comparison.ci_high
    # Conversions are rare in both periods, so the pre-period revenue explains little here: CUPED must not hurt.
    cuped = adjusted.analysis.metrics[1].cuped
    assert cuped is not None
    assert revenue_cuped.comparison.std_error <= revenue.comparison.std_error * (1 + 1e-3)
    assert not plain.analysis.srm.mismatch
    assert [row.period for row in plain.periods] == ["全部", "2026-03", "2026-04"]


def test_looks_before_the_planned_size_are_counted(service: ExperimentService, clock: FrozenClock) -> None:
    small_experiment(service)
    service.get("exp_maturity")
    first = service.results("exp_maturity")
    assert first.analysis.peeking is None  # no planned size: nothing to compare with
    service.create(spec(experiment_id="exp_planned", planned_n=100, variants={"holdout": 1, "push": 1}))
    service.assign(
        "exp_planned",
        pl.DataFrame({"cust_no": ["a", "b", "c", "d"], "variant": ["holdout", "push"] * 2, "assigned_at": [T0] * 4}),
    )
    service.results("exp_planned")
    clock.advance(timedelta(days=1))
    service.assign(
        "exp_planned", pl.DataFrame({"cust_no": ["e", "f"], "variant": ["holdout", "push"], "assigned_at": [T0] * 2})
    )
    second = service.results("exp_planned")
    assert second.analysis.peeking is not None
    assert second.analysis.peeking.looks == 2
    assert "peeking" in {w.code for w in second.analysis.warnings}
    clock.advance(timedelta(hours=1))
    reopened = service.results("exp_planned")  # same customers: the same look, no more alpha spent
    assert reopened.analysis.peeking == second.analysis.peeking


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"control": "nobody"}, "control: 'nobody' is not one of the variants"),
        ({"variants": {"holdout": 1}}, "at least two"),
        ({"variants": {"holdout": 1, "push": 0}}, "positive"),
        ({"window_days": 0}, "window_days"),
        ({"experiment_id": "bad id!"}, "experiment_id"),
    ],
)
def test_a_bad_plan_is_refused(service: ExperimentService, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(MarketloopError) as raised:
        service.create(spec(**overrides))
    assert raised.value.kind is ErrorKind.INVALID
    assert message in raised.value.detail


def test_bad_records_and_unknown_experiments_are_clear_errors(service: ExperimentService) -> None:
    service.create(spec())
    with pytest.raises(MarketloopError, match="variant is not one of"):
        service.assign("exp_maturity", pl.DataFrame({"cust_no": ["x"], "variant": ["email"], "assigned_at": [T0]}))
    with pytest.raises(MarketloopError, match="no column assigned_at"):
        service.assign("exp_maturity", pl.DataFrame({"cust_no": ["x"], "variant": ["push"]}))
    with pytest.raises(MarketloopError, match="assigned_at is empty or not valid"):
        service.assign("exp_maturity", pl.DataFrame({"cust_no": ["x"], "variant": ["push"], "assigned_at": ["soon"]}))
    with pytest.raises(MarketloopError, match="stage is not one of"):
        service.record_touches(
            "exp_maturity",
            pl.DataFrame(
                {"touch_id": ["t"], "cust_no": ["x"], "channel": ["sms"], "stage": ["read"], "touched_at": [T0]}
            ),
        )
    with pytest.raises(MarketloopError, match="no assignments"):
        service.results("exp_maturity")
    with pytest.raises(MarketloopError) as raised:
        service.results("exp_none")
    assert raised.value.kind is ErrorKind.NOT_FOUND
    with pytest.raises(MarketloopError) as raised:
        service.create(spec())
    assert raised.value.kind is ErrorKind.CONFLICT


def test_a_planned_variant_without_customers_is_a_clear_error(service: ExperimentService) -> None:
    service.create(spec(variants={"holdout": 1, "push": 1, "sms": 1}))
    service.assign(
        "exp_maturity",
        pl.DataFrame({"cust_no": ["a", "b", "c", "d"], "variant": ["holdout", "push"] * 2, "assigned_at": [T0] * 4}),
    )
    with pytest.raises(MarketloopError, match="sms planned but not in the data"):
        service.results("exp_maturity")


def test_strategy_comparison_across_experiments(service: ExperimentService) -> None:
    for seed, experiment_id, lift in ((1, "exp_push", 0.02), (2, "exp_sms", 0.0)):
        campaign = simulate_campaign(seed, 4000, lift=lift)
        service.create(spec(experiment_id=experiment_id, campaign=experiment_id))
        service.assign(experiment_id, campaign.assignments)
        service.record_conversions(campaign.conversions)
        service.record_touches(
            experiment_id, campaign.touches.with_columns(touch_id=pl.col("touch_id") + experiment_id)
        )
    rows = service.compare(["exp_push", "exp_sms"])
    whole = {row.experiment_id: row for row in rows if row.period == "全部"}
    assert set(whole) == {"exp_push", "exp_sms"}
    assert whole["exp_push"].lift_abs > whole["exp_sms"].lift_abs
    assert all(row.p_value is None or 0 <= row.p_value <= 1 for row in rows)
