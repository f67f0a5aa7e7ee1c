"""An analysis as a plain document (JSON for the CLI and the API, rows for the report and the xlsx)."""

from __future__ import annotations

import math
from typing import Any

from marketloop.experiments.analyze import Analysis
from marketloop.experiments.metric import MetricResult, Notice, VariantResult


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
