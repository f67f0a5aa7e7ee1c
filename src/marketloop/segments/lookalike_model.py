"""The lookalike model: seed customers against a random sample of the others, cross-fitted.

A gradient-boosted tree classifier (scikit-learn's
`HistGradientBoostingClassifier`: handles missing values and categories
natively, deterministic for a `random_state`) learns to tell the seed from
a random sample of the other customers (positive-unlabelled learning: the
sample may hold lookalikes, which is why they are only a sample).

The sample is split into `folds`; each fold's model is trained on the other
folds. So every sampled customer is scored by a model that never saw it —
that gives the out-of-fold AUC, and keeps the sampled customers' scores as
fair as everyone else's, who get the mean of the folds' models. Feature
importance is the drop in AUC when a feature is shuffled (permutation
importance) on each fold's held-out rows, averaged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.segments.features import FeatureMatrix

MIN_SEED = 20
MAX_SEED_SAMPLE = 50_000
MIN_SAMPLE = 1_000
MAX_SAMPLE = 200_000

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class FeatureImportance:
    feature: str
    importance: float  # mean drop in holdout AUC when the feature is shuffled
    importance_std: float
    seed_mean: float | None  # numeric features: mean over the seed / the other customers
    others_mean: float | None


@dataclass(frozen=True, kw_only=True)
class Scored:
    """The model's report and a score for every customer of the matrix (seed included)."""

    auc: float  # out-of-fold AUC, seed against the sample
    fold_aucs: list[float]
    seed_size: int
    sample_size: int  # the non-seed customers sampled as negatives
    seed_trained: int  # seed customers used (at most MAX_SEED_SAMPLE)
    importances: list[FeatureImportance]  # strongest first
    unused: list[str]  # features with fewer than two distinct values among the trained rows
    scores: Floats


def _too_small(title: str, detail: str) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.INVALID, code="segments.lookalike-too-small", title=title, detail=detail)


def score(
    matrix: FeatureMatrix, *, random_state: int = 0, negatives_per_seed: int = 3, folds: int = 3, threads: int = 1
) -> Scored:
    """Train the cross-fitted model and score every row; raises `MarketloopError` when the seed is too small.

    `threads` caps the OpenMP threads of training and scoring: on a shared machine more threads than
    free cores make tree growing many times slower, not faster.
    """
    with threadpool_limits(limits=threads, user_api="openmp"):
        return _score(matrix, random_state=random_state, negatives_per_seed=negatives_per_seed, folds=folds)


def _score(matrix: FeatureMatrix, *, random_state: int, negatives_per_seed: int, folds: int) -> Scored:
    rng = np.random.default_rng(random_state)
    unused = list(matrix.names)
    seed_rows = np.flatnonzero(matrix.seed)
    other_rows = np.flatnonzero(~matrix.seed)
    if len(seed_rows) < MIN_SEED:
        raise _too_small(f"The seed has {len(seed_rows)} customers", f"a lookalike model needs at least {MIN_SEED}")
    if len(other_rows) < MIN_SEED:
        raise _too_small("Almost every customer is in the seed", "there is nobody left to expand to")
    if not matrix.names:
        raise _too_small("No profile features to learn from", "every feature was excluded")
    positives = _sample(rng, seed_rows, MAX_SEED_SAMPLE)
    wanted = min(MAX_SAMPLE, max(MIN_SAMPLE, negatives_per_seed * len(positives)))
    negatives = _sample(rng, other_rows, wanted)
    rows = np.concatenate([positives, negatives])
    labels = np.concatenate([np.ones(len(positives), dtype=np.int64), np.zeros(len(negatives), dtype=np.int64)])
    varying = _varying(matrix, rows)
    if not varying:
        raise _too_small("No profile feature varies among these customers", "there is nothing to learn from")
    matrix = _only(matrix, varying)
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state).split(rows, labels)
    out_of_fold = np.zeros(len(rows))
    scores = np.zeros(len(matrix.cust_nos))
    fold_aucs: list[float] = []
    importances = np.zeros((folds, len(matrix.names)))
    for fold, (train, held_out) in enumerate(splits):
        model = _model(matrix, random_state).fit(matrix.values[rows[train]], labels[train])
        out_of_fold[held_out] = model.predict_proba(matrix.values[rows[held_out]])[:, 1]
        fold_aucs.append(float(roc_auc_score(labels[held_out], out_of_fold[held_out])))
        shuffled = permutation_importance(
            model,
            matrix.values[rows[held_out]],
            labels[held_out],
            scoring="roc_auc",
            n_repeats=3,
            random_state=random_state,
        )
        importances[fold] = shuffled.importances_mean
        scores += model.predict_proba(matrix.values)[:, 1] / folds
    scores[rows] = out_of_fold  # sampled customers: only from the model that did not train on them
    return Scored(
        auc=float(roc_auc_score(labels, out_of_fold)),
        fold_aucs=fold_aucs,
        seed_size=len(seed_rows),
        sample_size=len(negatives),
        seed_trained=len(positives),
        importances=_importances(matrix, importances),
        unused=[name for name in unused if name not in matrix.names],
        scores=scores,
    )


def _varying(matrix: FeatureMatrix, rows: npt.NDArray[np.intp]) -> list[int]:
    """The columns with at least two distinct values among `rows` (the others teach nothing, and break binning)."""
    found = []
    for i in range(len(matrix.names)):
        column = matrix.values[rows, i]
        present = column[~np.isnan(column)]
        if len(present) and present.min() != present.max():
            found.append(i)
    return found


def _only(matrix: FeatureMatrix, columns: list[int]) -> FeatureMatrix:
    names = [matrix.names[i] for i in columns]
    return replace(
        matrix,
        names=names,
        values=matrix.values[:, columns],
        categorical=matrix.categorical[columns],
        categories={k: v for k, v in matrix.categories.items() if k in names},
    )


def _sample(rng: np.random.Generator, rows: npt.NDArray[np.intp], at_most: int) -> npt.NDArray[np.intp]:
    if len(rows) <= at_most:
        return rows
    return np.sort(rng.choice(rows, size=at_most, replace=False))


def _model(matrix: FeatureMatrix, random_state: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=150,
        learning_rate=0.08,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        categorical_features=matrix.categorical if matrix.categorical.any() else None,
        class_weight="balanced",
        early_stopping=False,
        random_state=random_state,
    )


def _importances(matrix: FeatureMatrix, per_fold: Floats) -> list[FeatureImportance]:
    found = []
    for i, name in enumerate(matrix.names):
        numeric = not matrix.categorical[i]
        found.append(
            FeatureImportance(
                feature=name,
                importance=round(float(per_fold[:, i].mean()), 6),
                importance_std=round(float(per_fold[:, i].std()), 6),
                seed_mean=_mean(matrix.values[matrix.seed, i]) if numeric else None,
                others_mean=_mean(matrix.values[~matrix.seed, i]) if numeric else None,
            )
        )
    return sorted(found, key=lambda f: (-f.importance, f.feature))


def _mean(values: Floats) -> float | None:
    present = values[~np.isnan(values)]
    return round(float(present.mean()), 4) if len(present) else None
