"""Tag definitions (标签定义): what a tag is, how a rule tag is written, and what it reads (lineage).

A rule tag is written in the segment language (see docs/segments.md):

- a yes / no tag: `{"when": CONDITION}` — the customers for whom the
  condition holds carry the tag (value `"true"`);
- a value tag: `{"cases": [{"when": CONDITION, "value": "…"}, …], "else": "…"}` —
  each customer takes the value of the FIRST case whose condition holds,
  else the `else` value (no value when there is no `else`).

A CONDITION is the JSON form (an object) or the text form (a string) of a
segment definition. Problems are reported with the JSON pointer of the spot
(`/definition/cases/2/when/field`) and, for the text form, its line and column.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.ports.tags import Lineage, Snapshots, TagCategory, TagKind
from marketloop.segments import bound as b
from marketloop.segments.ast import Condition, Position, RelativeDate
from marketloop.segments.catalog import Catalog
from marketloop.segments.errors import DefinitionError, Problem
from marketloop.segments.parse import parse_definition, to_json
from marketloop.segments.passes.walk import leaves
from marketloop.segments.resolve import SegmentLookup, resolve

NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
TRUE = "true"  # the value of a yes / no tag


@dataclass(frozen=True, kw_only=True)
class TagDraft:
    """A tag as a person (API, CLI, library file) writes it, before validation."""

    name: str
    title: str
    kind: TagKind = TagKind.RULE
    category: TagCategory
    description: str = ""
    owner: str = "marketloop"
    business_line: str = "retail"
    shared_with: tuple[str, ...] = ()
    definition: Mapping[str, Any] | None = None
    values: tuple[str, ...] = ()  # the values of a static / real-time / model value tag, when known
    snapshots: Snapshots = Snapshots.NONE


@dataclass(frozen=True, kw_only=True)
class RuleCase:
    condition: Condition
    value: str


@dataclass(frozen=True, kw_only=True)
class Rule:
    """A parsed rule: ordered cases (a yes / no tag has one, valued "true") and the `else` value."""

    cases: tuple[RuleCase, ...]
    otherwise: str | None = None
    boolean: bool = False

    def values(self) -> tuple[str, ...]:
        found = [c.value for c in self.cases] + ([self.otherwise] if self.otherwise is not None else [])
        return tuple(dict.fromkeys(found))

    def document(self) -> dict[str, Any]:
        """The stored JSON form (conditions in the segment language's JSON form)."""
        if self.boolean:
            return {"when": to_json(self.cases[0].condition)}
        doc: dict[str, Any] = {"cases": [{"when": to_json(c.condition), "value": c.value} for c in self.cases]}
        if self.otherwise is not None:
            doc["else"] = self.otherwise
        return doc


@dataclass(frozen=True, kw_only=True)
class BoundRule:
    """A rule resolved against the catalog: ready to print, with its lineage and a fingerprint of its meaning."""

    name: str
    cases: tuple[tuple[b.Bound, str], ...]
    otherwise: str | None
    boolean: bool
    lineage: Lineage
    fingerprint: str = field(default="")


def invalid(code: str, title: str, detail: str = "", errors: list[FieldError] | None = None) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.INVALID, code=f"tags.{code}", title=title, detail=detail, errors=errors or [])


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise invalid(
            "invalid-name",
            "The tag name is not valid",
            f"{name!r}: 2 to 63 lower-case letters, digits and _, starting with a letter",
            [FieldError(pointer="/name", detail="lower-case letters, digits and _, starting with a letter")],
        )


def parse_rule(doc: Mapping[str, Any] | None, pointer: str = "/definition") -> Rule:
    """The rule of a definition document; raises `DefinitionError` pointing at the spot."""
    if not isinstance(doc, Mapping):
        raise _problem('a rule tag needs a definition: {"when": …} or {"cases": [...], "else": …}', pointer)
    unknown = sorted(set(doc) - {"when", "cases", "else"})
    if unknown:
        raise _problem(f"unknown key {unknown[0]!r}: use when, or cases and else", f"{pointer}/{unknown[0]}")
    if ("when" in doc) == ("cases" in doc):
        raise _problem("give either when (a yes / no tag) or cases (a value tag), not both or neither", pointer)
    if "when" in doc:
        if "else" in doc:
            raise _problem("else belongs to a value tag (cases)", f"{pointer}/else")
        condition = _condition(doc["when"], f"{pointer}/when")
        return Rule(cases=(RuleCase(condition=condition, value=TRUE),), boolean=True)
    return _cases(doc, pointer)


def _cases(doc: Mapping[str, Any], pointer: str) -> Rule:
    items = doc["cases"]
    if not isinstance(items, list) or not items:
        raise _problem('cases is a non-empty list of {"when": …, "value": …}', f"{pointer}/cases")
    cases = []
    for i, item in enumerate(items):
        here = f"{pointer}/cases/{i}"
        if not isinstance(item, Mapping) or set(item) != {"when", "value"}:
            raise _problem('each case is {"when": CONDITION, "value": TEXT}', here)
        cases.append(RuleCase(condition=_condition(item["when"], f"{here}/when"), value=_value(item["value"], here)))
    otherwise = _value(doc["else"], pointer, "else") if doc.get("else") is not None else None
    return Rule(cases=tuple(cases), otherwise=otherwise)


def _value(value: Any, pointer: str, key: str = "value") -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise _problem(f"{key} is a non-empty text", f"{pointer}/{key}")
    return str(value)


def _condition(source: Any, pointer: str) -> Condition:
    if isinstance(source, str):
        try:
            return parse_definition(source)
        except DefinitionError as error:
            raise _located(error, pointer) from None
    if not isinstance(source, Mapping):
        raise _problem("a condition is the segment language's JSON form (an object) or text form (a string)", pointer)
    return parse_definition(source, pointer=pointer)


def _located(error: DefinitionError, pointer: str) -> DefinitionError:
    """Problems of a text-form condition, placed at the condition's pointer (keeping line and column)."""
    moved = []
    for problem in error.problems:
        where = problem.position or Position()
        position = Position(pointer=where.pointer or pointer, line=where.line, column=where.column)
        moved.append(Problem(code=problem.code, message=problem.message, position=position))
    return DefinitionError(moved)


def _problem(message: str, pointer: str) -> DefinitionError:
    return DefinitionError([Problem(code="syntax", message=message, position=Position(pointer=pointer))])


def bind_rule(name: str, rule: Rule, catalog: Catalog, segments: SegmentLookup | None = None) -> BoundRule:
    """Resolve every case; raises one `DefinitionError` listing every problem of every case."""
    problems: list[Problem] = []
    bound: list[tuple[b.Bound, str]] = []
    for i, case in enumerate(rule.cases):
        try:
            bound.append((resolve(case.condition, catalog, segments), case.value))
        except DefinitionError as error:
            here = "/definition/when" if rule.boolean else f"/definition/cases/{i}/when"
            problems += _located(error, here).problems
    if problems:
        raise DefinitionError(problems)
    found = BoundRule(
        name=name,
        cases=tuple(bound),
        otherwise=rule.otherwise,
        boolean=rule.boolean,
        lineage=lineage([node for node, _ in bound], catalog),
    )
    digest = hashlib.sha256(repr((found.cases, found.otherwise, found.boolean)).encode()).hexdigest()[:16]
    return replace(found, fingerprint=digest)


_LOGS: dict[type[b.Bound], Callable[[Any], tuple[str, ...]]] = {
    b.EventCount: lambda n: (n.match.event,),
    b.EventSequence: lambda n: tuple(s.event for s in n.steps),
    b.EventAbsence: lambda n: (n.first.event, n.then_not.event),
}


def lineage(nodes: list[b.Bound], catalog: Catalog) -> Lineage:
    """Relations, event names and tags the bound conditions read, and whether the answer moves with as_of."""
    relations = {catalog.relations.customers}
    events: set[str] = set()
    tags: set[str] = set()
    moving = False
    for leaf in (found for node in nodes for found in leaves(node)):
        relations.update(_relations_of(leaf, catalog))
        if isinstance(leaf, b.TagIn):
            tags.add(leaf.tag)
        reads = _LOGS.get(type(leaf))
        if reads is not None:
            events.update(reads(leaf))
        moving = moving or _moves(leaf)
    return Lineage(
        relations=tuple(sorted(relations)),
        events=tuple(sorted(events)),
        tags=tuple(sorted(tags)),
        time_dependent=moving,
    )


def _relations_of(leaf: b.Bound, catalog: Catalog) -> tuple[str, ...]:
    names = catalog.relations
    field_ = getattr(leaf, "field", None)
    if field_ is not None:
        return (field_.relation,)
    if isinstance(leaf, b.TagIn):
        return (names.tags,)
    if isinstance(leaf, b.HoldingTest):
        return (names.holdings, names.products) if leaf.needs_products else (names.holdings,)
    if isinstance(leaf, b.TxnTest):
        return (names.transactions,)
    if type(leaf) in _LOGS:
        return (catalog.events.relation,)
    return ()


def _moves(leaf: b.Bound) -> bool:
    if isinstance(leaf, b.HoldingTest | b.TxnTest | b.EventCount | b.EventSequence | b.EventAbsence):
        return True
    values = [getattr(leaf, name, None) for name in ("value", "low", "high")] + list(getattr(leaf, "values", ()))
    return any(isinstance(v, RelativeDate) for v in values)
