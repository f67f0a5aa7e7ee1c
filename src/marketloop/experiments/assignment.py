"""Deterministic assignment of customers to variants: the same customer always lands in the same variant.

A journey's split or holdout step calls `variant_for` when a customer
reaches it; hashing (experiment id, cust_no) instead of drawing a random
number means a retry, a replay of the log or a second process gives the
same answer without a lookup, and different experiments split
independently of each other. The hash (BLAKE2b, 64 bits) maps to a number
in [0, 1), which falls into the variant whose cumulative share covers it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime

import polars as pl

from marketloop.ports.experiments import VariantPlan

_SCALE = float(1 << 64)


def bucket(experiment_id: str, cust_no: str) -> float:
    """A number in [0, 1), uniform over customers, fixed for (experiment, customer)."""
    digest = hashlib.blake2b(f"{experiment_id}\x1f{cust_no}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def variant_for(experiment_id: str, variants: Sequence[VariantPlan], cust_no: str) -> str:
    """The variant of `cust_no` under the planned shares (normalised); stable across calls and processes."""
    total = sum(v.share for v in variants)
    if not variants or total <= 0:
        raise ValueError("an experiment needs variants with positive shares")
    point = bucket(experiment_id, cust_no) * total
    running = 0.0
    for variant in variants:
        running += variant.share
        if point < running:
            return variant.name
    return variants[-1].name  # rounding at the very top of the range


def assignments_for(
    experiment_id: str, variants: Sequence[VariantPlan], cust_nos: Iterable[str], at: datetime
) -> pl.DataFrame:
    """Rows (cust_no, variant, assigned_at) for these customers, ready for `ExperimentService.assign`."""
    customers = list(cust_nos)
    return pl.DataFrame(
        {
            "cust_no": customers,
            "variant": [variant_for(experiment_id, variants, c) for c in customers],
            "assigned_at": pl.Series([at] * len(customers), dtype=pl.Datetime("us", "UTC")),
        }
    )
