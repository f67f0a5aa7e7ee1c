"""Rebuilding a bound tree: apply a function to every leaf, keep the and / or / not structure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from marketloop.segments import bound as b


def rebuild(node: b.Bound, leaf: Callable[[b.Bound], b.Bound]) -> b.Bound:
    """`node` with `leaf` applied to each node that is not and / or / not / a scan, bottom-up."""
    if isinstance(node, b.AllOf | b.AnyOf):
        return replace(node, parts=tuple(rebuild(part, leaf) for part in node.parts))
    if isinstance(node, b.Negation):
        return replace(node, part=rebuild(node.part, leaf))
    if isinstance(node, b.AttrScan):
        return replace(node, condition=rebuild(node.condition, leaf))
    if isinstance(node, b.AggregateScan):
        return replace(node, tests=tuple(_measured(leaf(test)) for test in node.tests))
    return leaf(node)


def _measured(node: b.Bound) -> b.EventCount | b.TxnTest:
    if not isinstance(node, b.EventCount | b.TxnTest):
        raise TypeError(f"an aggregate scan counts events or transactions, not {type(node).__name__}")
    return node


def leaves(node: b.Bound) -> list[b.Bound]:
    """Every leaf of `node`, left to right (the tests inside scans included)."""
    if isinstance(node, b.AllOf | b.AnyOf):
        return [found for part in node.parts for found in leaves(part)]
    if isinstance(node, b.Negation):
        return leaves(node.part)
    if isinstance(node, b.AttrScan):
        return leaves(node.condition)
    if isinstance(node, b.AggregateScan):
        return list(node.tests)
    return [node]
