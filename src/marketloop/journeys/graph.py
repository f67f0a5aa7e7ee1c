"""The journey graph (旅程画布): steps of self-describing types joined by their named outcomes, and its validation.

A journey is a list of steps; each step has a type from
`marketloop.journeys.step_types`, its settings and `next`: outcome name ->
the id of the step it leads to. `validate` checks everything the console
and the API must refuse, and reports every problem at once, each with a JSON
pointer into the journey document:

- exactly one entry; unique step ids; known types; settings valid for the type;
- no dangling step: every outcome leads to an existing step, no outcome is
  left unconnected (terminals have none), every step is reachable from the
  entry (goals, which watch the whole journey, need no incoming edge);
- cycles only through a wait: a loop without one would spin without time passing.

Pure: no I/O; the runtime and the versioned store build on it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.journeys.step_types import STEP_TYPES, JourneyPolicy, Name, StepType


class Step(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: Name
    type: str
    name: str = ""
    settings: dict[str, Any] = {}
    next: dict[str, str] = {}


class JourneyGraph(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: Name
    name: str
    steps: list[Step]
    description: str = ""
    policy: JourneyPolicy = msgspec.field(default_factory=JourneyPolicy)


class JourneyGraphError(MarketloopError):
    """An invalid journey; `errors` lists every problem with its JSON pointer."""


_decoder = msgspec.json.Decoder(JourneyGraph, strict=False)


def parse_journey(document: bytes | str | dict[str, Any]) -> JourneyGraph:
    """A journey graph from its JSON form, validated; `JourneyGraphError` (INVALID) lists what is wrong."""
    raw = document if isinstance(document, bytes | str) else msgspec.json.encode(document)
    try:
        graph = _decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        message = str(error)
        path = message.rsplit("at `$", 1)[1].rstrip("`") if "at `$" in message else ""
        pointer = path.replace("[", "/").replace("]", "").replace(".", "/") or "/"
        raise _error([FieldError(pointer=pointer, detail=message.split(" - at ")[0])]) from None
    problems = validate(graph)
    if problems:
        raise _error(problems)
    return graph


def _error(problems: list[FieldError]) -> JourneyGraphError:
    return JourneyGraphError(
        kind=ErrorKind.INVALID,
        code="journeys.invalid-graph",
        title="The journey is not valid",
        detail="; ".join(f"{p.pointer}: {p.detail}" for p in problems[:5]),
        errors=problems,
    )


def settings_of(step: Step) -> Any:
    """The step's settings as its type's struct (raises msgspec.ValidationError when they do not fit)."""
    return msgspec.convert(step.settings, STEP_TYPES[step.type].settings, strict=False)


def outcomes_of(step: Step) -> list[str]:
    return STEP_TYPES[step.type].outcomes(settings_of(step))


def validate(graph: JourneyGraph) -> list[FieldError]:
    """Every problem of `graph`, in step order; empty when it is valid."""
    problems: list[FieldError] = []
    index: dict[str, int] = {}
    typed: dict[str, StepType] = {}
    for number, step in enumerate(graph.steps):
        where = f"/steps/{number}"
        if step.id in index:
            problems.append(FieldError(pointer=f"{where}/id", detail=f"step id {step.id!r} is used twice"))
            continue
        index[step.id] = number
        step_type = STEP_TYPES.get(step.type)
        if step_type is None:
            known = ", ".join(STEP_TYPES)
            problems.append(FieldError(pointer=f"{where}/type", detail=f"unknown step type {step.type!r} ({known})"))
            continue
        settings_problems = _settings_problems(step, step_type, where)
        problems += settings_problems
        if not settings_problems:
            typed[step.id] = step_type
            problems += _edge_problems(step, index, graph, where)
    problems += _entry_problems(graph)
    if not problems:
        problems += _reach_problems(graph, index, typed) + _cycle_problems(graph, index)
    return problems


def _settings_problems(step: Step, step_type: StepType, where: str) -> list[FieldError]:
    try:
        settings = settings_of(step)
    except msgspec.ValidationError as error:
        message = str(error)
        path = message.rsplit("at `$", 1)[1].rstrip("`") if "at `$" in message else ""
        pointer = f"{where}/settings" + path.replace("[", "/").replace("]", "").replace(".", "/")
        return [FieldError(pointer=pointer, detail=message.split(" - at ")[0])]
    return [FieldError(pointer=f"{where}/settings{p}", detail=m) for p, m in step_type.check(settings)]


def _edge_problems(step: Step, index: dict[str, int], graph: JourneyGraph, where: str) -> list[FieldError]:
    ids = {s.id for s in graph.steps}
    outcomes = outcomes_of(step)
    problems = [
        FieldError(pointer=f"{where}/next/{name}", detail=f"a {step.type} step has no outcome {name!r} ({outcomes})")
        for name in step.next
        if name not in outcomes
    ]
    for name in outcomes:
        target = step.next.get(name)
        if target is None:
            problems.append(FieldError(pointer=f"{where}/next", detail=f"outcome {name!r} leads nowhere"))
        elif target not in ids:
            problems.append(FieldError(pointer=f"{where}/next/{name}", detail=f"no step {target!r}"))
        elif target == step.id and step.type != "wait":
            problems.append(FieldError(pointer=f"{where}/next/{name}", detail="a step leads to itself without a wait"))
    return problems


def _entry_problems(graph: JourneyGraph) -> list[FieldError]:
    entries = [n for n, s in enumerate(graph.steps) if s.type == "entry"]
    if len(entries) == 1:
        return []
    if not entries:
        return [FieldError(pointer="/steps", detail="a journey has exactly one entry step; it has none")]
    return [FieldError(pointer=f"/steps/{n}/type", detail="a journey has exactly one entry step") for n in entries[1:]]


def _targets(step: Step) -> list[str]:
    return list(step.next.values())


def _reach_problems(graph: JourneyGraph, index: dict[str, int], typed: dict[str, StepType]) -> list[FieldError]:
    by_id = {s.id: s for s in graph.steps}
    entry = next(s.id for s in graph.steps if s.type == "entry")
    reached, pending = {entry}, [entry]
    while pending:
        for target in _targets(by_id[pending.pop()]):
            if target not in reached:
                reached.add(target)
                pending.append(target)
    return [
        FieldError(pointer=f"/steps/{index[s.id]}", detail=f"step {s.id!r} cannot be reached from the entry")
        for s in graph.steps
        if s.id not in reached and not typed[s.id].listener
    ]


def _cycle_problems(graph: JourneyGraph, index: dict[str, int]) -> list[FieldError]:
    """A cycle is allowed only through a wait: without the waits the graph must have no cycle."""
    by_id = {s.id: s for s in graph.steps if s.type != "wait"}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in by_id:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(t for t in _targets(by_id[start]) if t in by_id))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                detail = f"the steps {child!r} .. {node!r} form a loop without a wait"
                return [FieldError(pointer=f"/steps/{index[node]}/next", detail=detail)]
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(t for t in _targets(by_id[child]) if t in by_id)))
    return []


def describe_step_types() -> list[dict[str, Any]]:
    """Every step type with its settings schema and outcomes: what the canvas and the API docs show."""
    return [step_type.describe() for step_type in STEP_TYPES.values()]
