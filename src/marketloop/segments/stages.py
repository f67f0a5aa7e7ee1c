"""Stage schemes of fixed-segment monitoring: what "stage" a customer is in on a date, as data and as SQL.

A scheme is one of

    {"segments": [{"name": "new", "definition": <JSON or text form>}, …]}   first matching stage wins
    {"column": "vip_tier"}                                                  the value of a profile column
    {"tag": "lifecycle"}                                                    the value of a tag

A customer who is closed or no longer in `customers` is in stage `_left`
(离行/未知); one in the bank but in no stage (no definition matched, or the
value is NULL) is in `_none`. `stage_sql` prints the query that gives every
customer's stage, in the warehouse's dialect; the warehouse joins it to the
frozen members.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from marketloop.core.bank import LogicalType
from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.ports.segment_monitoring import LEFT, UNSTAGED
from marketloop.segments.ast import Condition
from marketloop.segments.catalog import Catalog
from marketloop.segments.parse import parse_definition, to_json
from marketloop.segments.printers import printer_for

MAX_STAGES = 50
CLOSED_STATUSES = ("closed",)  # customers.status values that mean the customer left the bank
STAGE_TYPES = (LogicalType.TEXT, LogicalType.INTEGER, LogicalType.BOOLEAN)
_TEXT_TYPE = {"duckdb": "VARCHAR", "postgres": "TEXT", "clickhouse": "String"}


@dataclass(frozen=True, kw_only=True)
class Stage:
    name: str
    definition: Condition


@dataclass(frozen=True, kw_only=True)
class StageScheme:
    """Ordered named definitions, or one column, or one tag; exactly one of the three."""

    stages: tuple[Stage, ...] = ()
    column: str | None = None
    tag: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.column is not None:
            return {"column": self.column}
        if self.tag is not None:
            return {"tag": self.tag}
        return {"segments": [{"name": s.name, "definition": to_json(s.definition)} for s in self.stages]}

    def names(self) -> list[str]:
        """The stage names in scheme order (definitions only; column and tag values are found in the data)."""
        return [s.name for s in self.stages]


def invalid(title: str, detail: str = "", pointer: str = "/stages") -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.INVALID,
        code="segments.invalid-stages",
        title=title,
        detail=detail,
        errors=[FieldError(pointer=pointer, detail=detail or title)],
    )


def parse_scheme(document: object, pointer: str = "/stages") -> StageScheme:
    """A scheme from its JSON form; raises `MarketloopError` (invalid) or `DefinitionError` with the spot."""
    if not isinstance(document, Mapping) or len(document) != 1:
        raise invalid("A stage scheme is one of {segments: […]}, {column: NAME} or {tag: NAME}", pointer=pointer)
    ((kind, value),) = document.items()
    if kind in ("column", "tag"):
        if not isinstance(value, str) or not value.strip():
            raise invalid(f"{kind} must be a name", pointer=f"{pointer}/{kind}")
        return StageScheme(column=value.strip()) if kind == "column" else StageScheme(tag=value.strip())
    if kind != "segments":
        raise invalid(f"unknown stage scheme {kind!r}; use segments, column or tag", pointer=pointer)
    if not isinstance(value, Sequence) or isinstance(value, str) or not 1 <= len(value) <= MAX_STAGES:
        raise invalid(f"segments must list 1 to {MAX_STAGES} stages", pointer=f"{pointer}/segments")
    stages = tuple(_stage(item, f"{pointer}/segments/{i}") for i, item in enumerate(value))
    seen: set[str] = set()
    for i, stage in enumerate(stages):
        if stage.name in seen:
            raise invalid(f"stage {stage.name!r} is named twice", pointer=f"{pointer}/segments/{i}/name")
        seen.add(stage.name)
    return StageScheme(stages=stages)


def _stage(item: object, pointer: str) -> Stage:
    if not isinstance(item, Mapping) or set(item) != {"name", "definition"}:
        raise invalid("each stage is {name, definition}", pointer=pointer)
    name = item["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > 64 or name.startswith("_"):
        raise invalid("a stage name is 1 to 64 characters and does not start with _", pointer=f"{pointer}/name")
    return Stage(name=name.strip(), definition=parse_definition(item["definition"], pointer=f"{pointer}/definition"))


def parse_stages_text(text: str) -> StageScheme:
    """The text form of a definitions scheme: one `name: definition` per line; `#` starts a comment line."""
    items: list[dict[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, colon, definition = line.partition(":")
        if not colon or not definition.strip():
            raise invalid(
                "each line is `stage name: definition`", f"line {number}: {line.strip()!r}", f"/line/{number}"
            )
        items.append({"name": name.strip(), "definition": definition.strip()})
    return parse_scheme({"segments": items})


# -- the stage of every customer, as SQL -----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StageQuery:
    """What `stage_sql` needs besides the scheme: the dialect, the catalog, how to print a member query."""

    dialect: str
    catalog: Catalog
    members_sql: Callable[[Condition], str]  # a definition's membership SQL at the monitoring `as_of`
    columns: Callable[[str], Mapping[str, LogicalType] | None]  # the warehouse's columns of a relation


def stage_sql(scheme: StageScheme, query: StageQuery) -> str:
    """SELECT cust_no, stage over every customer in `customers`, in the warehouse's dialect."""
    spell = printer_for(query.dialect, query.catalog)
    relations = query.catalog.relations
    closed = ", ".join(spell.string(s) for s in CLOSED_STATUSES)
    left = f"WHEN c.status IN ({closed}) THEN {spell.string(LEFT)}"
    joins, cases = "", ""
    if scheme.column is not None:
        relation, column = _column(scheme.column, query)
        alias = "c" if relation == relations.customers else "p"
        if alias == "p":
            joins = f" LEFT JOIN {spell.ident(relation)} p ON p.cust_no = c.cust_no"
        value = f"{alias}.{spell.ident(column)}"
        cases = f" WHEN {value} IS NOT NULL THEN CAST({value} AS {_TEXT_TYPE.get(query.dialect, 'VARCHAR')})"
    elif scheme.tag is not None:
        tags = spell.ident(relations.tags)
        joins = (
            f" LEFT JOIN (SELECT cust_no, min({spell.ident('value')}) AS stage FROM {tags}"
            f" WHERE {spell.ident('tag')} = {spell.string(scheme.tag)} GROUP BY cust_no) t ON t.cust_no = c.cust_no"
        )
        cases = " WHEN t.stage IS NOT NULL THEN t.stage"
    else:
        for stage in scheme.stages:
            member = f"SELECT cust_no FROM ({query.members_sql(stage.definition)}) s"
            cases += f" WHEN c.cust_no IN ({member}) THEN {spell.string(stage.name)}"
    return (
        f"SELECT c.cust_no AS cust_no, CASE {left}{cases} ELSE {spell.string(UNSTAGED)} END AS stage"
        f" FROM {spell.ident(relations.customers)} c{joins}"
    )


def _column(name: str, query: StageQuery) -> tuple[str, str]:
    found = query.catalog.field(name)
    if found is None:
        close = difflib.get_close_matches(name, query.catalog.names(), n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise invalid(f"unknown column {name!r}{hint}", pointer="/stages/column")
    if found.type not in STAGE_TYPES:
        raise invalid(
            f"{name} is a {found.type.value} column; stages come from text, integer or boolean columns",
            pointer="/stages/column",
        )
    if query.columns(found.relation) is None:
        raise MarketloopError(
            kind=ErrorKind.CONFLICT,
            code="segments.missing-relation",
            title=f"The stages read {found.relation}, which does not exist yet",
            detail="build the customer profile first" if found.relation == query.catalog.relations.profile else "",
        )
    return found.relation, found.column


def parse_stage_option(spec: str, read: Callable[[str], str], segment_name: Callable[[str], str]) -> dict[str, Any]:
    """The JSON form of a `--stages` option: `column:NAME`, `tag:NAME`, `segments:SEG,SEG…` or a file.

    A file holds the JSON form (starting with `{`) or one `name: definition` per line. With
    `segments:` each saved segment is a stage named after it, in the order given.
    """
    kind, colon, rest = spec.partition(":")
    if colon and kind in ("column", "tag"):
        return {kind: rest.strip()}
    if colon and kind == "segments":
        ids = [i.strip() for i in rest.split(",") if i.strip()]
        return {"segments": [{"name": segment_name(i), "definition": {"segment": i}} for i in ids]}
    text = read(spec)
    if text.lstrip().startswith("{"):
        try:
            document: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError as error:
            raise invalid("The stages file is not valid JSON", f"{spec}: {error}") from None
        return document
    return parse_stages_text(text).to_json()
