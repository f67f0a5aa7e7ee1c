"""Push time windows down into scans: a merged scan reads only the union of its tests' windows.

Each test keeps its own window as a filter on its count; the scan's WHERE
bounds the time column by the union, which lets the warehouse skip row
groups (DuckDB zone maps, ClickHouse primary-key ranges) before grouping.
"""

from __future__ import annotations

from dataclasses import replace

from marketloop.segments import bound as b


def push_windows(node: b.Bound) -> b.Bound:
    if isinstance(node, b.AllOf | b.AnyOf):
        return replace(node, parts=tuple(push_windows(part) for part in node.parts))
    if isinstance(node, b.Negation):
        return replace(node, part=push_windows(node.part))
    if isinstance(node, b.AggregateScan):
        return replace(node, window=union(tuple(test.window for test in node.tests)))
    return node


def union(windows: tuple[b.Window, ...]) -> b.Window:
    """The smallest window holding every one of `windows` (all folded)."""
    starts, ends = zip(*(w.folded() for w in windows), strict=True)
    return b.Window(span=max(w.span for w in windows), start=min(starts), end=max(ends))
