"""Profile features for lookalike models: which customer fields, the SQL that reads them, the numeric matrix.

Features are the non-personal fields of `customers` and `customer_profile`
(assets, liabilities, transactions, behaviour, demographics). Identifiers
and organisational fields (cust_no, branch, RM, status) are left out, and so
by default are the fields the seed's own definition tests: the model should
find customers who resemble the seed in other respects, not those just
below its thresholds.

Numbers and booleans are taken as they are; dates and times become days
before `as_of`; text becomes categories (the enumeration when the field has
one, else its most frequent values, the rest in one "other" category).
Missing values stay missing (NaN): the model handles them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import numpy.typing as npt
import polars as pl

from marketloop.core.bank import LogicalType
from marketloop.segments import bound as b
from marketloop.segments.catalog import Catalog, Field
from marketloop.segments.passes.walk import leaves
from marketloop.segments.printers import printer_for
from marketloop.segments.stages import CLOSED_STATUSES

T = LogicalType
NOT_FEATURES = frozenset({"cust_no", "branch_id", "rm_id", "status", "name_prefix"})
FEATURE_TYPES = (T.INTEGER, T.DECIMAL, T.DOUBLE, T.BOOLEAN, T.DATE, T.TIMESTAMP, T.TEXT)
MAX_CATEGORIES = 30  # most frequent values of a free-text field kept as their own category
SEED_COLUMN = "is_seed__"
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, kw_only=True)
class FeatureMatrix:
    """One row per customer (in cust_no order) and one column per feature; categories coded 0, 1, …"""

    cust_nos: list[str]
    seed: npt.NDArray[np.bool_]
    names: list[str]
    values: npt.NDArray[np.float64]
    categorical: npt.NDArray[np.bool_]
    categories: dict[str, list[str]]  # feature → the category of each code (the last may be "(other)")


def defining_fields(node: b.Bound) -> set[str]:
    """The names of the customer fields a bound definition tests directly."""
    found = set()
    for leaf in leaves(node):
        field = getattr(leaf, "field", None)
        if isinstance(field, Field):
            found.add(field.name)
    return found


def feature_fields(catalog: Catalog, present: Mapping[str, Iterable[str]], exclude: Iterable[str] = ()) -> list[Field]:
    """The catalog's customer and profile fields that can be features and whose column `present` lists."""
    relations = {catalog.relations.customers, catalog.relations.profile}
    skipped = NOT_FEATURES | set(exclude)
    columns = {relation: set(names) for relation, names in present.items()}
    return [
        f
        for f in catalog.fields
        if f.relation in relations
        and f.name not in skipped
        and f.type in FEATURE_TYPES
        and f.column in columns.get(f.relation, set())
    ]


def feature_sql(dialect: str, catalog: Catalog, fields: list[Field], seed_sql: str) -> str:
    """SELECT cust_no, is_seed, one column per field, over the customers still in the bank, in cust_no order."""
    spell = printer_for(dialect, catalog)
    relations = catalog.relations
    selected = ", ".join(
        f"{'c' if f.relation == relations.customers else 'p'}.{spell.ident(f.column)} AS {spell.ident(f.name)}"
        for f in fields
    )
    closed = ", ".join(spell.string(s) for s in CLOSED_STATUSES)
    return (
        f"SELECT c.cust_no AS cust_no, c.cust_no IN (SELECT cust_no FROM ({seed_sql}) s) AS {SEED_COLUMN}"
        f"{', ' + selected if selected else ''}"
        f" FROM {spell.ident(relations.customers)} c"
        f" LEFT JOIN {spell.ident(relations.profile)} p ON p.cust_no = c.cust_no"
        f" WHERE c.status IS NULL OR c.status NOT IN ({closed})"
        f" ORDER BY c.cust_no"
    )


def matrix(table: pl.DataFrame, fields: list[Field], as_of: datetime) -> FeatureMatrix:
    """The numeric matrix of the rows `feature_sql` selected."""
    columns: list[npt.NDArray[np.float64]] = []
    categories: dict[str, list[str]] = {}
    for field in fields:
        values, labels = _column(table.get_column(field.name), field, as_of)
        columns.append(values)
        if labels is not None:
            categories[field.name] = labels
    return FeatureMatrix(
        cust_nos=[str(v) for v in table.get_column("cust_no").to_list()],
        seed=table.get_column(SEED_COLUMN).fill_null(False).to_numpy().astype(bool),
        names=[f.name for f in fields],
        values=np.column_stack(columns) if columns else np.empty((table.height, 0)),
        categorical=np.array([f.name in categories for f in fields], dtype=bool),
        categories=categories,
    )


def _column(column: pl.Series, field: Field, as_of: datetime) -> tuple[npt.NDArray[np.float64], list[str] | None]:
    if field.type == T.TEXT:
        return _categories(column, field)
    if field.type == T.DATE:
        today = (as_of.astimezone(UTC).date() - _EPOCH).days
        return today - _floats(column.cast(pl.Date).cast(pl.Int32)), None
    if field.type == T.TIMESTAMP:
        now = as_of.timestamp() * 1_000_000
        micros = column.cast(pl.Datetime("us", "UTC")).dt.epoch("us")
        return (now - _floats(micros)) / 86_400_000_000, None
    return _floats(column), None


def _floats(column: pl.Series) -> npt.NDArray[np.float64]:
    return np.asarray(column.cast(pl.Float64).to_numpy(), dtype=np.float64)


def _categories(column: pl.Series, field: Field) -> tuple[npt.NDArray[np.float64], list[str]]:
    texts = [None if v is None else str(v) for v in column.to_list()]
    if field.allowed:
        labels = list(field.allowed)
    else:
        counted = Counter(t for t in texts if t is not None)
        labels = [value for value, _ in sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CATEGORIES]]
    codes = {label: float(i) for i, label in enumerate(labels)}
    other = float(len(labels))
    coded = np.array([np.nan if t is None else codes.get(t, other) for t in texts], dtype=np.float64)
    if np.any(coded == other):
        labels = [*labels, "(other)"]
    return coded, labels
