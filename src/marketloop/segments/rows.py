"""Field tests on one customer's row, in two-valued logic: a comparison with a missing (NULL) value is false.

Shared by the Python evaluator and the merge pass (which asks how a formula
answers for a customer without a row in a relation), so both read NULL the
same way the printed SQL does.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from marketloop.segments import bound as b
from marketloop.segments.ast import Op

_COMPARE: dict[Op, Callable[[Any, Any], bool]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}


def compare(op: Op, left: Any, right: Any) -> bool:
    """`left op right`, false when either is None; a float compares with a Decimal as a float (as SQL does)."""
    if left is None or right is None:
        return False
    if isinstance(left, float) and isinstance(right, Decimal):
        right = float(right)
    return bool(_COMPARE[op](left, right))


def test_row(node: b.Bound, row: Mapping[str, Any]) -> bool:
    """Whether the field tests of `node` hold for `row` (column → value; absent columns are NULL)."""
    if isinstance(node, b.AllOf):
        return all(test_row(part, row) for part in node.parts)
    if isinstance(node, b.AnyOf):
        return any(test_row(part, row) for part in node.parts)
    if isinstance(node, b.Negation):
        return not test_row(node.part, row)
    if isinstance(node, b.Constant):
        return node.value
    if isinstance(node, b.AttrScan):
        return test_row(node.condition, row)
    return _field_test(node, row)


def _field_test(node: b.Bound, row: Mapping[str, Any]) -> bool:
    if isinstance(node, b.FieldCompare):
        return compare(node.op, row.get(node.field.column), node.value)
    if isinstance(node, b.FieldIn):
        found = row.get(node.field.column)
        return any(compare(Op.EQ, found, value) for value in node.values)
    if isinstance(node, b.FieldBetween):
        found = row.get(node.field.column)
        return compare(Op.GE, found, node.low) and compare(Op.LE, found, node.high)
    if isinstance(node, b.FieldIsNull):
        return row.get(node.field.column) is None
    raise TypeError(f"not a field test: {type(node).__name__}")


def field_tests_only(node: b.Bound) -> bool:
    """Whether `node` is built from field tests alone (with and / or / not)."""
    if isinstance(node, b.AllOf | b.AnyOf):
        return all(field_tests_only(part) for part in node.parts)
    if isinstance(node, b.Negation):
        return field_tests_only(node.part)
    return isinstance(node, b.FieldCompare | b.FieldIn | b.FieldBetween | b.FieldIsNull)


def relations(node: b.Bound) -> set[str]:
    """The relations whose fields `node`'s field tests read."""
    if isinstance(node, b.AllOf | b.AnyOf):
        return set().union(*(relations(part) for part in node.parts))
    if isinstance(node, b.Negation):
        return relations(node.part)
    if isinstance(node, b.FieldCompare | b.FieldIn | b.FieldBetween | b.FieldIsNull):
        return {node.field.relation}
    return set()
