"""On the simulator's bank, a holdout experiment recovers the effect its response model implies."""

from __future__ import annotations

import pytest

from marketloop.experiments.service import ExperimentService, ExperimentSpec
from marketloop.testing.experiments import simulate_bank_holdout


@pytest.mark.parametrize("seed", [11, 2026])
def test_holdout_recovers_the_response_models_effect(service: ExperimentService, seed: int) -> None:
    campaign = simulate_bank_holdout(seed, 60_000, channel="call")
    service.create(
        ExperimentSpec(
            experiment_id="exp_call",
            name="理财外呼 vs 对照组",
            control="holdout",
            variants={"holdout": 20, "call": 80},
            goal="wealth_purchase",
            window_days=7,
            kind="holdout",
        )
    )
    service.assign("exp_call", campaign.assignments)
    service.record_touches("exp_call", campaign.touches)
    service.record_conversions(campaign.conversions)
    results = service.results("exp_call")
    rate = results.analysis.metrics[0].variants[1]
    revenue = results.analysis.metrics[1].variants[1]
    assert rate.comparison is not None
    assert revenue.comparison is not None
    assert rate.comparison.ci_low <= campaign.true_rate_lift <= rate.comparison.ci_high
    assert revenue.comparison.ci_low <= campaign.true_revenue_lift <= revenue.comparison.ci_high
    assert rate.significant  # the call campaign's effect (≈1.2 points) is several standard errors here
    assert not results.analysis.srm.mismatch
    funnel = {row.variant: row for row in results.funnel}
    assert funnel["holdout"].stages["sent"] == 0
    assert funnel["call"].stages["opened"] < funnel["call"].stages["sent"] == funnel["call"].targeted
