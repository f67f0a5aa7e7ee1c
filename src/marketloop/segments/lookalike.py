"""Lookalike expansion (相似客群扩展): from a seed segment, find the customers most like its members.

`LookalikeService.expand` evaluates the seed at `as_of`, reads the profile
features of every customer still in the bank (`features`), trains the
cross-fitted seed-vs-sample model (`lookalike_model`), ranks the customers
outside the seed by score, and saves the top `size` (or those scoring at
least `min_score`) as a new segment: a static list `cust_no in (…)`, so it
counts, materialises, exports and answers in real time like any other. The
report — out-of-fold AUC, feature importances with seed and expansion
means, the score range — is stored with it, so marketers see how alike the
expansion is. The same seed, data and parameters give the same expansion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.core.events import as_utc
from marketloop.ports.clock import Clock
from marketloop.ports.segment_monitoring import LookalikeRecord, MonitoringWarehouse, SegmentMonitorRepository
from marketloop.ports.segments import SegmentVersion
from marketloop.segments import features as f
from marketloop.segments.catalog import Catalog, Field
from marketloop.segments.lookalike_model import FeatureImportance, score
from marketloop.segments.parse import from_json
from marketloop.segments.service import SegmentService

MAX_EXPANSION = 200_000
LEAKY_AUC = 0.98  # seed vs sample this separable means the seed's own condition is among the features


@dataclass(frozen=True, kw_only=True)
class ScoredCustomer:
    cust_no: str
    score: float


@dataclass(frozen=True, kw_only=True)
class LookalikeReport:
    seed_id: str
    seed_version: int
    as_of: datetime
    auc: float
    fold_aucs: list[float]
    seed_size: int
    sample_size: int
    seed_trained: int
    candidates: int  # customers outside the seed who were scored
    size: int  # customers in the expansion
    min_score: float | None  # the asked threshold
    lowest_score: float  # of the expansion
    seed_median_score: float  # what a typical seed member scores, for comparison
    features: list[str]
    excluded: list[str]  # fields left out: those the seed's definition tests, and those asked
    unused: list[str]  # fields that do not vary among the trained customers (empty or constant)
    importances: list[FeatureImportance]
    expansion_means: dict[str, float | None]  # numeric features: mean over the expansion
    random_state: int
    warnings: list[str]


@dataclass(frozen=True, kw_only=True)
class LookalikeResult:
    segment: SegmentVersion
    report: LookalikeReport
    members: list[ScoredCustomer]  # best first


def _invalid(title: str, pointer: str) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.INVALID,
        code="segments.invalid-lookalike",
        title=title,
        errors=[FieldError(pointer=pointer, detail=title)],
    )


def _check(size: int | None, min_score: float | None) -> None:
    if size is None and min_score is None:
        raise _invalid("give size, min_score or both", "/size")
    if size is not None and not 1 <= size <= MAX_EXPANSION:
        raise _invalid(f"size must be 1 to {MAX_EXPANSION}", "/size")
    if min_score is not None and not 0 <= min_score <= 1:
        raise _invalid("min_score must be between 0 and 1", "/min_score")


class LookalikeService:
    """Expand a seed segment into a saved static segment of the most similar customers."""

    def __init__(
        self,
        segments: SegmentService,
        repository: SegmentMonitorRepository,
        warehouse: MonitoringWarehouse,
        clock: Clock,
    ) -> None:
        self._segments = segments
        self._repository = repository
        self._warehouse = warehouse
        self._clock = clock

    def expand(
        self,
        seed_id: str,
        *,
        size: int | None = None,
        min_score: float | None = None,
        name: str | None = None,
        as_of: datetime | None = None,
        keep_defining_fields: bool = False,
        exclude: Sequence[str] = (),
        random_state: int = 0,
    ) -> LookalikeResult:
        _check(size, min_score)
        seed = self._segments.get(seed_id)
        moment = as_utc(as_of) if as_of is not None else self._clock.now()
        catalog = self._segments.catalog()
        bound = self._segments.bind(from_json(seed.definition), segment_id=seed_id)
        present = self._present(catalog)
        _check_exclude(exclude, f.feature_fields(catalog, present))
        excluded = sorted(set(exclude) | (set() if keep_defining_fields else f.defining_fields(bound)))
        fields = f.feature_fields(catalog, present, excluded)
        seed_sql = self._segments.members_sql(from_json(seed.definition), as_of=moment)
        table = self._warehouse.table(f.feature_sql(self._warehouse.dialect, catalog, fields, seed_sql))
        matrix = f.matrix(table, fields, moment)
        scored = score(matrix, random_state=random_state)
        chosen = _choose(matrix, scored.scores, size, min_score)
        report = LookalikeReport(
            seed_id=seed_id,
            seed_version=seed.version,
            as_of=moment,
            auc=round(scored.auc, 6),
            fold_aucs=[round(a, 6) for a in scored.fold_aucs],
            seed_size=scored.seed_size,
            sample_size=scored.sample_size,
            seed_trained=scored.seed_trained,
            candidates=int((~matrix.seed).sum()),
            size=len(chosen),
            min_score=min_score,
            lowest_score=round(float(scored.scores[chosen[-1]]), 6),
            seed_median_score=round(float(np.median(scored.scores[matrix.seed])), 6),
            features=[name for name in matrix.names if name not in scored.unused],
            excluded=excluded,
            unused=scored.unused,
            importances=scored.importances,
            expansion_means=_means(matrix, chosen, set(scored.unused)),
            random_state=random_state,
            warnings=_warnings(scored.auc, scored.importances),
        )
        members = [ScoredCustomer(cust_no=matrix.cust_nos[i], score=round(float(scored.scores[i]), 6)) for i in chosen]
        saved = self._save(seed, report, members, name)
        return LookalikeResult(segment=saved, report=report, members=members)

    def _present(self, catalog: Catalog) -> dict[str, list[str]]:
        relations = catalog.relations
        found = {}
        for relation in (relations.customers, relations.profile):
            columns = self._warehouse.columns(relation)
            if columns is None:
                raise MarketloopError(
                    kind=ErrorKind.CONFLICT,
                    code="segments.missing-relation",
                    title=f"Lookalike reads {relation}, which does not exist yet",
                    detail="build the customer profile first" if relation == relations.profile else "",
                )
            found[relation] = list(columns)
        return found

    def _save(
        self, seed: SegmentVersion, report: LookalikeReport, members: list[ScoredCustomer], name: str | None
    ) -> SegmentVersion:
        definition = {"field": "cust_no", "op": "in", "value": sorted(m.cust_no for m in members)}
        description = (
            f"相似客群: {seed.segment_id} v{seed.version} 的前 {report.size} 名相似客户 (AUC {report.auc:.3f})"
        )
        saved = self._segments.save(name or f"{seed.name} 相似客群", definition, description=description)
        self._repository.add_lookalike(
            LookalikeRecord(
                segment_id=saved.segment_id,
                seed_id=seed.segment_id,
                seed_version=seed.version,
                created_at=saved.created_at,
                report=report_json(report),
            )
        )
        return saved

    def report(self, segment_id: str) -> LookalikeRecord:
        """The stored report of the expansion that made `segment_id`."""
        found = self._repository.lookalike(segment_id)
        if found is None:
            raise MarketloopError(
                kind=ErrorKind.NOT_FOUND,
                code="segments.not-a-lookalike",
                title=f"{segment_id} was not made by a lookalike expansion",
            )
        return found


def _check_exclude(exclude: Sequence[str], features: list[Field]) -> None:
    known = {field.name for field in features}
    unknown = sorted(set(exclude) - known)
    if unknown:
        raise _invalid(f"not a feature: {', '.join(unknown)}", "/exclude")


def _warnings(auc: float, importances: list[FeatureImportance]) -> list[str]:
    if auc < LEAKY_AUC or not importances:
        return []
    top = importances[0].feature
    return [
        f"AUC {auc:.3f}: the features separate the seed almost perfectly, so a feature probably restates "
        f"the seed's own condition (the strongest is {top}); the expansion is then little better than "
        f"random among the others. Exclude such features (exclude / --exclude) and expand again."
    ]


def report_json(report: LookalikeReport) -> dict[str, Any]:
    found = asdict(report)
    found["as_of"] = report.as_of.isoformat()
    return found


def _choose(matrix: f.FeatureMatrix, scores: np.ndarray[Any, Any], size: int | None, min_score: float | None) -> Any:
    candidates = np.flatnonzero(~matrix.seed)
    if min_score is not None:
        candidates = candidates[scores[candidates] >= min_score]
    if len(candidates) == 0:
        raise MarketloopError(
            kind=ErrorKind.CONFLICT,
            code="segments.lookalike-empty",
            title=f"No customer outside the seed scores at least {min_score}",
            detail="lower min_score",
        )
    names = np.array([matrix.cust_nos[i] for i in candidates])
    ordered = candidates[np.lexsort((names, -scores[candidates]))]  # best score first, then cust_no
    return ordered[:size] if size is not None else ordered


def _means(matrix: f.FeatureMatrix, chosen: Any, unused: set[str]) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    for i, name in enumerate(matrix.names):
        if matrix.categorical[i] or name in unused:
            continue
        values = matrix.values[chosen, i]
        present = values[~np.isnan(values)]
        found[name] = round(float(present.mean()), 4) if len(present) else None
    return found
