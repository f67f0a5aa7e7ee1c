"""Decisions: the passes between the bound tree and the printers, in order.

1. `fold` — relative dates and windows fixed against `as_of` (constant folding);
2. `normalise` — flatten and / or, fold constants, drop double negations;
3. `merge` — one scan per relation, one aggregate scan per event / transaction log;
4. `push_windows` — each aggregate scan reads only the union of its windows.
"""

from __future__ import annotations

from datetime import datetime

from marketloop.segments import bound as b
from marketloop.segments.passes.fold import fold
from marketloop.segments.passes.merge import merge
from marketloop.segments.passes.normalise import normalise
from marketloop.segments.passes.windows import push_windows

__all__ = ["fold", "merge", "normalise", "plan", "push_windows"]


def plan(node: b.Bound, as_of: datetime, *, population: str = "customers") -> b.Bound:
    """The tree the printers print: `node` folded against `as_of`, normalised, merged, windows pushed down."""
    return push_windows(merge(normalise(fold(node, as_of)), population))
