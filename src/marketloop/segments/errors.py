"""What is wrong with a segment definition, and where: the errors of the parsers and the resolver.

Each `Problem` has a stable `code`, a message in the bank's words and the
`Position` it is about. `DefinitionError` carries every problem found (the
resolver does not stop at the first) and is a `MarketloopError`, so the API
answers 400 with `errors[]` pointing at each spot and the CLI prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.segments.ast import Position


class Code:
    """The stable codes of definition problems."""

    SYNTAX = "syntax"
    UNKNOWN_FIELD = "unknown-field"
    UNKNOWN_TAG = "unknown-tag"
    UNKNOWN_VALUE = "unknown-value"
    WRONG_TYPE = "wrong-type"
    WRONG_OPERATOR = "wrong-operator"
    IMPOSSIBLE_WINDOW = "impossible-window"
    BAD_COUNT = "bad-count"
    UNKNOWN_SEGMENT = "unknown-segment"
    SEGMENT_CYCLE = "segment-cycle"


@dataclass(frozen=True, kw_only=True)
class Problem:
    code: str
    message: str
    position: Position | None = None

    def __str__(self) -> str:
        where = f"{self.position}: " if self.position is not None else ""
        return f"{where}{self.message} [{self.code}]"


class DefinitionError(MarketloopError):
    """A segment definition that cannot be parsed or resolved, with every problem and its position."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0] if problems else Problem(code=Code.SYNTAX, message="empty definition")
        super().__init__(
            kind=ErrorKind.INVALID,
            code="segments.invalid-definition",
            title="The segment definition is not valid",
            detail=str(first) if len(problems) <= 1 else f"{first} (and {len(problems) - 1} more)",
            errors=[_field_error(p) for p in problems],
        )


def _field_error(problem: Problem) -> FieldError:
    position = problem.position or Position()
    return FieldError(
        pointer=position.pointer or "",
        detail=f"{problem.message} [{problem.code}]",
        line=position.line,
        column=position.column,
    )


def fail(code: str, message: str, position: Position | None) -> DefinitionError:
    return DefinitionError([Problem(code=code, message=message, position=position)])
