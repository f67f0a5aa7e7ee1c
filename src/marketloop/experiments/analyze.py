"""Analyse an A/B table: one row per customer, a variant column and metric columns.

Works the same on a file given to `marketloop experiment analyze` and on the
per-customer outcomes of a stored experiment. Bad input is a `MarketloopError`
(invalid) that names the column or value and what was found instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.experiments.cuped import CupedAdjustment, cuped_adjust, cuped_theta
from marketloop.experiments.design import Peeking, SampleRatioCheck, peeking, sample_ratio
from marketloop.experiments.metric import MetricResult, Notice, compare_metric
from marketloop.experiments.stats import Sample


@dataclass(frozen=True, kw_only=True)
class AnalysisOptions:
    """What to compare and how."""

    variant_col: str
    control: str
    metrics: tuple[str, ...]
    covariate: str | None = None  # pre-period column for CUPED
    planned_split: dict[str, float] | None = None  # variant → share; equal split when None
    alpha: float = 0.05
    power: float = 0.8
    planned_n: int | None = None  # customers planned in all variants together
    previous_looks: tuple[int, ...] = ()  # total customers at each earlier analysis
    mde_rel: float | None = None  # relative effect the test was planned to detect


@dataclass(frozen=True, kw_only=True)
class Analysis:
    control: str
    variants: list[str]  # control first, then the others in sorted order
    alpha: float
    srm: SampleRatioCheck
    peeking: Peeking | None
    metrics: list[MetricResult]
    warnings: list[Notice] = field(default_factory=list)


def invalid(code: str, title: str, detail: str) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.INVALID, code=f"experiments.{code}", title=title, detail=detail)


def analyze(frame: pl.DataFrame, options: AnalysisOptions) -> Analysis:
    """Every metric, every variant against the control, with the design checks."""
    _check_columns(frame, options)
    if not options.metrics:
        raise invalid("metric-missing", "No metric to analyse", "give at least one metric column")
    frame, notices = _usable_rows(frame, options)
    variants = _variants(frame, options)
    sizes = {name: int(size) for name, size in frame.group_by("variant").len().iter_rows()}
    srm = _srm(sizes, variants, options)
    if srm.mismatch:
        notices.append(_srm_notice(srm))
    look = _peeking(sum(sizes.values()), options)
    if look is not None and look.early:
        notices.append(_peeking_notice(look))
    alpha = look.sequential_alpha if look is not None and look.early else options.alpha
    results = [_metric(frame, metric, variants, options, alpha) for metric in options.metrics]
    return Analysis(
        control=options.control,
        variants=variants,
        alpha=options.alpha,
        srm=srm,
        peeking=look,
        metrics=results,
        warnings=notices,
    )


def _check_columns(frame: pl.DataFrame, options: AnalysisOptions) -> None:
    wanted = [options.variant_col, *options.metrics]
    if options.covariate:
        wanted.append(options.covariate)
    missing = [name for name in wanted if name not in frame.columns]
    if missing:
        raise invalid(
            "column-missing",
            "A column is missing",
            f"no column {', '.join(repr(m) for m in missing)} in the data; its columns are {', '.join(frame.columns)}",
        )
    for name in [*options.metrics, *([options.covariate] if options.covariate else [])]:
        dtype = frame.schema[name]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise invalid(
                "metric-not-numeric",
                "A metric column is not numeric",
                f"column {name!r} holds {dtype} values; metrics and covariates must be numbers (0/1 for a rate)",
            )


def _usable_rows(frame: pl.DataFrame, options: AnalysisOptions) -> tuple[pl.DataFrame, list[Notice]]:
    columns = [options.variant_col, *options.metrics, *([options.covariate] if options.covariate else [])]
    selected = frame.select(
        pl.col(options.variant_col).cast(pl.String).alias("variant"),
        *[pl.col(c).cast(pl.Float64).alias(f"m:{c}") for c in columns[1:]],
    )
    notices: list[Notice] = []
    no_variant = selected["variant"].null_count()
    if no_variant:
        notices.append(Notice("variant-null", f"{no_variant} 行没有变体值，已排除 (rows without a variant left out)"))
        selected = selected.filter(pl.col("variant").is_not_null())
    return selected, notices


def _variants(frame: pl.DataFrame, options: AnalysisOptions) -> list[str]:
    found = sorted(str(v) for v in frame["variant"].unique().to_list())
    if options.control not in found:
        raise invalid(
            "control-unknown",
            "The control value is not in the data",
            f"no row has {options.variant_col} = {options.control!r}; the values are {', '.join(found) or '(none)'}",
        )
    if len(found) < 2:
        raise invalid(
            "single-variant",
            "Only one variant",
            f"every row has {options.variant_col} = {options.control!r}; a comparison needs a second variant",
        )
    if options.planned_split is not None:
        unknown = sorted(set(options.planned_split) - set(found))
        if unknown:
            raise invalid(
                "split-invalid",
                "The planned split names a variant that has no customers",
                f"{', '.join(unknown)} planned but not in the data (values: {', '.join(found)})",
            )
    return [options.control, *[v for v in found if v != options.control]]


def _srm(sizes: dict[str, int], variants: list[str], options: AnalysisOptions) -> SampleRatioCheck:
    planned = options.planned_split or {name: 1.0 for name in variants}
    missing = [name for name in variants if name not in planned]
    if missing:
        raise invalid(
            "split-invalid",
            "The planned split does not cover every variant",
            f"variants {', '.join(missing)} are in the data but not in the planned split",
        )
    return sample_ratio({name: sizes.get(name, 0) for name in planned}, planned)


def _srm_notice(srm: SampleRatioCheck) -> Notice:
    observed = ", ".join(f"{k}={v}" for k, v in srm.observed.items())
    planned = ", ".join(f"{k}={v:.0%}" for k, v in srm.expected_share.items())
    return Notice(
        "sample-ratio-mismatch",
        f"样本比例失衡 (SRM): 实际 {observed}，计划 {planned}，卡方检验 p={srm.p_value:.2g}。"
        "分组或埋点可能有问题，提升结果不可信。",
    )


def _peeking(total: int, options: AnalysisOptions) -> Peeking | None:
    if options.planned_n is None:
        return None
    return peeking(options.previous_looks, total, options.planned_n, alpha=options.alpha)


def _peeking_notice(look: Peeking) -> Notice:
    return Notice(
        "peeking",
        f"提前查看: 样本量只达到计划的 {look.fraction:.0%} (第 {look.looks} 次查看)。"
        f"按 O'Brien–Fleming alpha 消耗，本次显著性水平为 {look.sequential_alpha:.2g}，而非 {look.nominal_alpha:g}。",
    )


def _metric(
    frame: pl.DataFrame, metric: str, variants: list[str], options: AnalysisOptions, alpha: float
) -> MetricResult:
    column = f"m:{metric}"
    rows = frame.filter(pl.col(column).is_not_null())
    notices: list[Notice] = []
    dropped = frame.height - rows.height
    if dropped:
        notices.append(Notice("metric-null", f"{dropped} 行没有 {metric} 的值，已排除 (rows without a value left out)"))
    values = {v: rows.filter(pl.col("variant") == v)[column].to_numpy().astype(np.float64) for v in variants}
    binary = all(bool(np.isin(array, (0.0, 1.0)).all()) for array in values.values())
    adjustment: CupedAdjustment | None = None
    if options.covariate:
        values, adjustment, dropped_cov = _cuped(rows, column, f"m:{options.covariate}", variants)
        if dropped_cov:
            notices.append(Notice("covariate-null", f"{dropped_cov} 行没有协变量值，CUPED 时已排除"))
    samples = {v: Sample.of(values[v]) for v in variants}
    return compare_metric(
        metric,
        samples,
        control=options.control,
        binary=binary,
        alpha=alpha,
        power=options.power,
        mde_rel=options.mde_rel,
        cuped=adjustment,
        notices=notices,
    )


def _cuped(
    rows: pl.DataFrame, column: str, covariate: str, variants: list[str]
) -> tuple[dict[str, np.typing.NDArray[np.float64]], CupedAdjustment, int]:
    complete = rows.filter(pl.col(covariate).is_not_null())
    metric = complete[column].to_numpy().astype(np.float64)
    pre = complete[covariate].to_numpy().astype(np.float64)
    adjustment = cuped_theta(metric, pre)
    adjusted = complete.with_columns(pl.Series("adjusted", cuped_adjust(metric, pre, adjustment)))
    values = {v: adjusted.filter(pl.col("variant") == v)["adjusted"].to_numpy().astype(np.float64) for v in variants}
    return values, adjustment, rows.height - complete.height
