"""The import mapping document: how a source file's columns become a bank table's columns.

Owns reading the YAML, and checking it against the table's `TableSpec` before
any data row is read: unknown or computed target columns, unmapped required
columns, bad options are all reported together, each naming its column. The
check against the file's header (`check_header`) names source columns the
file lacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import yaml

from marketloop.core.bank import TABLES_BY_NAME, LogicalType, TableSpec
from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.core.personal import ID_CARD, PersonalField, personal_fields
from marketloop.profiles.casting import cast, expected

ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8",
    "gbk": "gbk",
    "cp936": "gbk",
    "gb2312": "gbk",
    "gb18030": "gb18030",
}
KEEP = ("last", "first")
FORMATS = ("csv", "parquet")
_TOP_KEYS = frozenset({"table", "format", "encoding", "delimiter", "null_values", "timezone", "dedupe", "columns"})
_COLUMN_KEYS = frozenset({"from", "type", "default", "format", "trim", "map"})
Scalar = str | int | float | bool


@dataclass(frozen=True, kw_only=True)
class ColumnMapping:
    """One target column: where its value comes from and how it is cleaned."""

    target: str
    source: str | None = None  # None: every row takes `default`
    type: LogicalType = LogicalType.TEXT
    default: Scalar | None = None
    format: str | None = None  # strptime format for dates and timestamps
    trim: bool = True
    values: tuple[tuple[str, str], ...] = ()  # the `map:` of source value → stored value
    allowed: tuple[str, ...] = ()
    required: bool = False
    personal: PersonalField | None = None

    @property
    def label(self) -> str:
        """`birth_date (出生日期)`: how reasons and errors name the column."""
        return f"{self.target} ({self.source})" if self.source and self.source != self.target else self.target


@dataclass(frozen=True, kw_only=True)
class ImportMapping:
    """A checked mapping for one table."""

    table: TableSpec
    columns: tuple[ColumnMapping, ...]
    format: str | None = None  # None: from the file name
    encoding: str = "utf-8"
    delimiter: str = ","
    null_values: tuple[str, ...] = ()
    timezone: str = "Asia/Shanghai"
    keep: str = "last"

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.source for c in self.columns if c.source is not None))

    def column(self, target: str) -> ColumnMapping | None:
        return next((c for c in self.columns if c.target == target), None)

    @property
    def derived_from_id_card(self) -> tuple[str, ...]:
        """Columns filled from the ID number where the file has no value: gender and birth date."""
        if self.column(ID_CARD.source) is None:
            return ()
        return tuple(name for name in ("gender", "birth_date") if name in self.table.names)

    def check_header(self, header: Sequence[str], origin: str) -> None:
        """Raise, naming them, when the file lacks source columns the mapping reads."""
        missing = [s for s in self.sources if s not in header]
        if missing:
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="import.missing-columns",
                title=f"{origin} lacks columns the mapping reads",
                detail=f"missing {', '.join(missing)}; the file has: {', '.join(header) or '(no columns)'}",
                errors=[FieldError(pointer=f"columns.{c.target}.from", detail=f"no column {c.source!r} in the file")
                        for c in self.columns if c.source in missing],
            )  # fmt: skip


def load_mapping(path: Path, table: str | None = None) -> ImportMapping:
    """The mapping in YAML file `path`, checked against the bank table it names (or `table`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _invalid(f"cannot read mapping {path}", f"{type(error).__name__}: {error}") from None
    return parse_mapping(text, table=table, origin=str(path))


def parse_mapping(text: str, *, table: str | None = None, origin: str = "mapping") -> ImportMapping:
    """Parse and check a mapping document; every problem found is listed in one error."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _invalid(f"{origin} is not valid YAML", str(error)) from None
    if not isinstance(document, dict):
        raise _invalid(f"{origin} is not a mapping document", "expected keys such as `table:` and `columns:`")
    problems: list[FieldError] = [_problem(k, "unknown key") for k in document if k not in _TOP_KEYS]
    spec = _table(document.get("table"), table, problems)
    options = _options(document, problems)
    columns = _columns(document.get("columns"), spec, problems) if spec else ()
    if spec is not None:
        problems += _unmapped_required(spec, document.get("columns"))
    problems += _default_problems(columns, str(options["timezone"]))
    if problems or spec is None:
        raise _invalid(f"{origin} is not a valid mapping", f"{len(problems)} problem(s)", problems)
    return ImportMapping(table=spec, columns=columns, **options)  # type: ignore[arg-type]


def _table(named: object, wanted: str | None, problems: list[FieldError]) -> TableSpec | None:
    name = wanted if named is None else named
    if not isinstance(name, str) or name not in TABLES_BY_NAME:
        known = ", ".join(TABLES_BY_NAME)
        problems.append(_problem("table", f"unknown table {name!r}; the bank tables are: {known}"))
        return None
    if wanted is not None and name != wanted:
        problems.append(_problem("table", f"the mapping is for {name!r}, not {wanted!r}"))
    return TABLES_BY_NAME[name]


def _options(document: Mapping[str, object], problems: list[FieldError]) -> dict[str, object]:
    options: dict[str, object] = {}
    encoding = str(document.get("encoding", "utf-8")).lower()
    if encoding not in ENCODINGS:
        problems.append(_problem("encoding", f"unknown encoding {encoding!r}; use utf-8, gbk or gb18030"))
    options["encoding"] = ENCODINGS.get(encoding, "utf-8")
    delimiter = {"tab": "\t", "\\t": "\t"}.get(str(document.get("delimiter", ",")), str(document.get("delimiter", ",")))
    if len(delimiter) != 1:
        problems.append(_problem("delimiter", f"{delimiter!r} is not one character"))
    options["delimiter"] = delimiter
    file_format = document.get("format")
    if file_format is not None and file_format not in FORMATS:
        problems.append(_problem("format", f"{file_format!r} is not one of {', '.join(FORMATS)}"))
    options["format"] = file_format
    options["keep"] = _keep(document.get("dedupe"), problems)
    options["null_values"] = tuple(str(v) for v in _as_list(document.get("null_values")))
    options["timezone"] = str(document.get("timezone", "Asia/Shanghai"))
    return options


def _keep(dedupe: object, problems: list[FieldError]) -> str:
    keep = dedupe.get("keep", "last") if isinstance(dedupe, dict) else dedupe or "last"
    if keep not in KEEP:
        problems.append(_problem("dedupe.keep", f"{keep!r} is not one of {', '.join(KEEP)}"))
        return "last"
    return str(keep)


def _columns(raw: object, spec: TableSpec, problems: list[FieldError]) -> tuple[ColumnMapping, ...]:
    if not isinstance(raw, dict) or not raw:
        problems.append(_problem("columns", "expected `target_column: {from: source column}` entries"))
        return ()
    personal = personal_fields(spec)
    columns = []
    for target, entry in raw.items():
        column = _column(str(target), entry, spec, personal, problems)
        if column is not None:
            columns.append(column)
    return tuple(columns)


def _column(
    target: str, entry: object, spec: TableSpec, personal: dict[str, PersonalField], problems: list[FieldError]
) -> ColumnMapping | None:
    where = f"columns.{target}"
    if isinstance(entry, str):
        entry = {"from": entry}
    if not isinstance(entry, dict):
        problems.append(_problem(where, "expected a source column name or {from: ..., default: ...}"))
        return None
    before = len(problems)
    problems += [_problem(f"{where}.{k}", "unknown option") for k in entry if k not in _COLUMN_KEYS]
    base = _target(target, spec, personal, problems)
    if base is None:
        return None
    column = ColumnMapping(
        target=target,
        source=None if entry.get("from") is None else str(entry["from"]),
        type=base.type,
        default=_default(entry.get("default"), where, problems),
        format=None if entry.get("format") is None else str(entry["format"]),
        trim=bool(entry.get("trim", True)),
        values=_values(entry.get("map"), where, problems),
        allowed=base.allowed,
        required=base.required,
        personal=base.personal,
    )
    _check_column(column, entry.get("type"), problems)
    return column if len(problems) == before else None


def _target(
    target: str, spec: TableSpec, personal: dict[str, PersonalField], problems: list[FieldError]
) -> ColumnMapping | None:
    """The spec's view of a target column (its type, allowed values, required), or None with a problem."""
    if target in personal:
        return ColumnMapping(target=target, personal=personal[target])
    computed = {derived: field.source for field in personal.values() for derived in field.derived}
    if target in computed:
        problems.append(_problem(f"columns.{target}", f"is computed: map the source column to `{computed[target]}`"))
        return None
    if target not in spec.names:
        known = ", ".join([*personal, *(n for n in spec.names if n not in computed)])
        problems.append(_problem(f"columns.{target}", f"{spec.name} has no column {target!r}; its columns: {known}"))
        return None
    column = spec.column(target)
    return ColumnMapping(target=target, type=column.type, allowed=column.allowed, required=column.required)


def _check_column(column: ColumnMapping, declared_type: object, problems: list[FieldError]) -> None:
    where = f"columns.{column.target}"
    if column.source is None and column.default is None:
        problems.append(_problem(where, "needs `from:` (a source column) or `default:`"))
    if column.personal is not None and column.default is not None:
        problems.append(_problem(f"{where}.default", "a personal value takes no default"))
    if declared_type is not None and declared_type != column.type.value:
        problems.append(_problem(f"{where}.type", f"is {column.type.value} in the bank model, not {declared_type!r}"))
    if column.format is not None and column.type not in (LogicalType.DATE, LogicalType.TIMESTAMP):
        problems.append(_problem(f"{where}.format", "only dates and timestamps take a format"))
    if column.format is not None and "%" not in column.format:
        problems.append(_problem(f"{where}.format", f"{column.format!r} is not a strptime format such as %Y%m%d"))


def _default(value: object, where: str, problems: list[FieldError]) -> Scalar | None:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, date):  # YAML reads an unquoted 2024-01-01 as a date
        return value.isoformat()
    problems.append(_problem(f"{where}.default", "must be a single value"))
    return None


def _values(raw: object, where: str, problems: list[FieldError]) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.append(_problem(f"{where}.map", "expected {source value: stored value}"))
        return ()
    if any(isinstance(k, bool) or isinstance(v, bool) for k, v in raw.items()):
        problems.append(_problem(f"{where}.map", "quote yes/no/true/false/on/off: YAML reads them as booleans"))
    return tuple((str(k), str(v)) for k, v in raw.items())


def _default_problems(columns: Sequence[ColumnMapping], timezone: str) -> list[FieldError]:
    """A default must be a value of its column (parsed as a file's value would be); the time zone must exist."""
    try:
        pl.select(cast(pl.lit("2024-01-01"), pl.String(), LogicalType.TIMESTAMP, None, timezone))
    except pl.exceptions.PolarsError:
        return [_problem("timezone", f"unknown time zone {timezone!r}")]
    problems = []
    for column in columns:
        if column.default is None or column.personal is not None:
            continue
        value = pl.select(cast(pl.lit(str(column.default)), pl.String(), column.type, column.format, timezone)).item()
        if value is None:
            problems.append(
                _problem(
                    f"columns.{column.target}.default",
                    f"{column.default!r} is not {expected(column.type, column.format)}",
                )
            )
        elif column.allowed and value not in column.allowed:
            problems.append(
                _problem(
                    f"columns.{column.target}.default", f"{column.default!r} is not one of {', '.join(column.allowed)}"
                )
            )
    return problems


def _unmapped_required(spec: TableSpec, columns: object) -> list[FieldError]:
    mapped = {str(target) for target in columns} if isinstance(columns, dict) else set()
    return [
        _problem(f"columns.{c.name}", f"required column {c.name} is not mapped (add `from:` or `default:`)")
        for c in spec.columns
        if c.required and c.name not in mapped
    ]


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _problem(pointer: str, detail: str) -> FieldError:
    return FieldError(pointer=pointer, detail=detail)


def _invalid(title: str, detail: str, problems: list[FieldError] | None = None) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.INVALID, code="import.mapping", title=title, detail=detail, errors=problems or []
    )
