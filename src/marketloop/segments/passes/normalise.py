"""Normalise and / or / not: flatten nesting, fold constants, drop double negations.

Two-valued logic makes each rewrite exact: `not not x` is `x`, `x and true`
is `x`, an `or` with a true part is true.
"""

from __future__ import annotations

from marketloop.segments import bound as b


def normalise(node: b.Bound) -> b.Bound:
    if isinstance(node, b.AllOf):
        return _junction(node.parts, any_of=False)
    if isinstance(node, b.AnyOf):
        return _junction(node.parts, any_of=True)
    if isinstance(node, b.Negation):
        return _negation(normalise(node.part))
    return node


def _negation(part: b.Bound) -> b.Bound:
    if isinstance(part, b.Constant):
        return b.Constant(value=not part.value)
    if isinstance(part, b.Negation):
        return part.part
    return b.Negation(part=part)


def _junction(parts: tuple[b.Bound, ...], *, any_of: bool) -> b.Bound:
    kind = b.AnyOf if any_of else b.AllOf
    flat: list[b.Bound] = []
    for part in (normalise(p) for p in parts):
        if isinstance(part, b.Constant):
            if part.value == any_of:  # true in an or, false in an and: decides the whole
                return part
            continue
        flat.extend(part.parts if isinstance(part, kind) else (part,))
    if not flat:
        return b.Constant(value=not any_of)
    return flat[0] if len(flat) == 1 else kind(parts=tuple(flat))
