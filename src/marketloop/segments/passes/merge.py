"""Decide the scans: one scan per relation for the field tests of an and / or, one per event and transaction log.

- Field tests on the population relation (`customers`) stay where they are:
  the printers test them on the population's own row.
- Field tests of another relation (`customer_profile`) that sit side by side
  in one and / or become one `AttrScan`, so the relation is read once. A
  scan's condition must be false for a customer without a row; when the
  formula is true on a missing row (`age is null`, `not aum > 1000`), the
  scan takes its negation and is negated itself.
- Event counts side by side become one `AggregateScan` of the events
  (counts with FILTER, a HAVING that ands or ors them), transactions alike.
"""

from __future__ import annotations

from marketloop.segments import bound as b
from marketloop.segments.rows import field_tests_only, relations, test_row


def merge(node: b.Bound, population: str) -> b.Bound:
    """`node` with its scans decided (see the module docstring)."""
    if isinstance(node, b.AllOf | b.AnyOf):
        return _junction(node, population)
    if isinstance(node, b.Negation):
        if _foreign(node, population):
            return _scan(node, population)
        return b.Negation(part=merge(node.part, population))
    if _foreign(node, population):
        return _scan(node, population)
    if isinstance(node, b.EventCount):
        return b.AggregateScan(source="events", tests=(node,))
    if isinstance(node, b.TxnTest):
        return b.AggregateScan(source="transactions", tests=(node,))
    return node


def _foreign(node: b.Bound, population: str) -> bool:
    """Field tests alone, all of one relation that is not the population."""
    found = relations(node)
    return field_tests_only(node) and len(found) == 1 and population not in found


def _scan(condition: b.Bound, population: str) -> b.Bound:
    (relation,) = relations(condition)
    if not test_row(condition, {}):
        return b.AttrScan(relation=relation, condition=condition)
    return b.Negation(part=b.AttrScan(relation=relation, condition=b.Negation(part=condition)))


def _junction(node: b.AllOf | b.AnyOf, population: str) -> b.Bound:
    """Group the parts by scan, keeping each group where its first member was."""
    any_of = isinstance(node, b.AnyOf)
    kind = b.AnyOf if any_of else b.AllOf
    groups: dict[str, list[b.Bound]] = {}
    order: list[str | b.Bound] = []
    for part in node.parts:
        key = _scan_key(part, population)
        if key is None:
            order.append(merge(part, population))
            continue
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(part)
    parts = tuple(_group(groups[item], kind, population) if isinstance(item, str) else item for item in order)
    return parts[0] if len(parts) == 1 else kind(parts=parts)


def _scan_key(part: b.Bound, population: str) -> str | None:
    """Which merged scan `part` joins: a relation's rows, the events or the transactions; None for its own."""
    if _foreign(part, population):
        return "rows:" + next(iter(relations(part)))
    if isinstance(part, b.EventCount):
        return "events"
    if isinstance(part, b.TxnTest):
        return "transactions"
    return None


def _group(group: list[b.Bound], kind: type[b.AllOf] | type[b.AnyOf], population: str) -> b.Bound:
    any_of = kind is b.AnyOf
    if isinstance(group[0], b.EventCount):
        return b.AggregateScan(source="events", tests=tuple(_counted(group)), any_of=any_of)
    if isinstance(group[0], b.TxnTest):
        return b.AggregateScan(source="transactions", tests=tuple(_counted(group)), any_of=any_of)
    return _scan(_join(kind, group), population)


def _counted(group: list[b.Bound]) -> list[b.EventCount | b.TxnTest]:
    return [part for part in group if isinstance(part, b.EventCount | b.TxnTest)]


def _join(kind: type[b.AllOf] | type[b.AnyOf], group: list[b.Bound]) -> b.Bound:
    return group[0] if len(group) == 1 else kind(parts=tuple(group))
