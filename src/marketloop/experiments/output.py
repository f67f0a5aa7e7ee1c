"""An analysis as a plain document (JSON for the CLI and the API, rows for the report and the xlsx)."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from marketloop.experiments.analyze import Analysis
from marketloop.experiments.compare import PeriodRow
from marketloop.experiments.effect import FunnelRow, RoiRow
from marketloop.experiments.metric import MetricResult, Notice, VariantResult
from marketloop.ports.experiments import Experiment

if TYPE_CHECKING:
    from marketloop.experiments.service import ExperimentResults


def number(value: float | None) -> float | None:
    """JSON has no NaN or infinity: they become null."""
    return value if value is not None and math.isfinite(value) else None


def notices(found: list[Notice]) -> list[dict[str, str]]:
    return [{"code": n.code, "message": n.message} for n in found]


def variant_document(row: VariantResult, test: str) -> dict[str, Any]:
    found: dict[str, Any] = {"variant": row.variant, "n": row.n, "mean": number(row.mean)}
    c = row.comparison
    found |= {
        "lift_abs": number(c.lift_abs) if c else None,
        "lift_rel": number(c.lift_rel) if c else None,
        "ci_low": number(c.ci_low) if c else None,
        "ci_high": number(c.ci_high) if c else None,
        "rel_ci_low": number(c.rel_ci_low) if c else None,
        "rel_ci_high": number(c.rel_ci_high) if c else None,
        "p_value": number(c.p_value) if c else None,
        "p_value_holm": number(row.p_value_holm),
        "significant": row.significant if c else None,
        "statistic": number(c.statistic) if c else None,
        "df": number(c.df) if c else None,
        "mde_abs": number(row.mde_abs),
        "power": number(row.power),
        "test": test if c else None,
        "warnings": notices(row.warnings),
    }
    return found


def metric_document(result: MetricResult) -> dict[str, Any]:
    cuped = result.cuped
    return {
        "metric": result.metric,
        "kind": result.kind,
        "test": result.test,
        "alpha": result.alpha,
        "cuped": None
        if cuped is None
        else {
            "theta": number(cuped.theta),
            "covariate_mean": number(cuped.covariate_mean),
            "correlation": number(cuped.correlation),
            "variance_reduction": number(cuped.variance_reduction),
        },
        "variants": [variant_document(row, result.test) for row in result.variants],
        "warnings": notices(result.warnings),
    }


def analysis_document(analysis: Analysis) -> dict[str, Any]:
    srm = analysis.srm
    look = analysis.peeking
    return {
        "control": analysis.control,
        "variants": analysis.variants,
        "alpha": analysis.alpha,
        "sample_ratio": {
            "observed": srm.observed,
            "expected_share": srm.expected_share,
            "chi_square": number(srm.chi_square),
            "p_value": number(srm.p_value),
            "mismatch": srm.mismatch,
        },
        "peeking": None
        if look is None
        else {
            "looks": look.looks,
            "fraction": look.fraction,
            "nominal_alpha": look.nominal_alpha,
            "sequential_alpha": look.sequential_alpha,
            "early": look.early,
        },
        "metrics": [metric_document(m) for m in analysis.metrics],
        "warnings": notices(analysis.warnings),
    }


def experiment_document(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "description": experiment.description,
        "kind": experiment.kind,
        "control": experiment.control,
        "variants": [{"name": v.name, "share": v.share} for v in experiment.variants],
        "goal": experiment.goal,
        "window_days": experiment.window_days,
        "campaign": experiment.campaign,
        "journey_id": experiment.journey_id,
        "planned_n": experiment.planned_n,
        "mde_rel": experiment.mde_rel,
        "alpha": experiment.alpha,
        "power": experiment.power,
        "created_at": experiment.created_at.isoformat(),
    }


def funnel_document(row: FunnelRow) -> dict[str, Any]:
    return {
        "variant": row.variant,
        "targeted": row.targeted,
        **row.stages,
        "conversion_rate": number(row.conversion_rate),
        "revenue_per_customer": number(row.revenue_per_customer),
        "aum_per_customer": number(row.aum_per_customer),
        "revenue": row.revenue,
        "aum": row.aum,
        "benefit_cost": row.benefit_cost,
    }


def roi_document(row: RoiRow) -> dict[str, Any]:
    return {name: number(value) if isinstance(value, float) else value for name, value in asdict(row).items()}


def period_document(row: PeriodRow) -> dict[str, Any]:
    return {name: number(value) if isinstance(value, float) else value for name, value in asdict(row).items()}


def results_document(results: ExperimentResults) -> dict[str, Any]:
    return {
        "experiment": experiment_document(results.experiment),
        "analysed_at": results.analysed_at.isoformat(),
        "analysis": analysis_document(results.analysis),
        "funnel": [funnel_document(row) for row in results.funnel],
        "roi": [roi_document(row) for row in results.roi],
        "periods": [period_document(row) for row in results.periods],
        "channel_costs": results.channel_costs,
    }
