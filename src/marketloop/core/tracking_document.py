"""The tracking plan as a document (what `marketloop tracking set` reads and the API exchanges).

    version: 3                    # optional: the version this edit starts from
    allow_unplanned_events: false # optional, default false
    events:
      fund_buy:
        description: 基金申购
        allow_unplanned_properties: true   # optional, default true
        properties:
          fund_code: {type: string, required: true}
          amount: {type: number, required: true, promote: true}
          channel: {type: string, allowed: [app, h5, counter]}
          note: string                     # shorthand for {type: string}
      $identify:                           # traits of identify messages
        properties:
          risk_level: {type: integer, allowed: [1, 2, 3, 4, 5]}

`parse_plan` validates everything at once and reports each problem with the
JSON pointer of the offending field; unknown keys are errors (a typo such as
`requird` must not silently mean "optional").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.core.tracking import (
    PROMOTABLE_TYPES,
    PROPERTY_TYPES,
    PYTHON_TYPES,
    SCALAR_TYPES,
    AllowedValue,
    EventSpec,
    PropertySpec,
    PropertyType,
    TrackingPlan,
)

PLAN_KEYS = frozenset({"version", "allow_unplanned_events", "events"})
EVENT_KEYS = frozenset({"description", "allow_unplanned_properties", "properties"})
PROPERTY_KEYS = frozenset({"type", "required", "allowed", "promote", "description"})


@dataclass(frozen=True, kw_only=True)
class ParsedPlan:
    """A parsed document: the plan (its `version` still to be assigned) and the version it was based on."""

    plan: TrackingPlan
    based_on_version: int | None


def invalid_plan(errors: list[FieldError]) -> MarketloopError:
    count = f"{len(errors)} problem" + ("" if len(errors) == 1 else "s")
    return MarketloopError(
        kind=ErrorKind.INVALID,
        code="tracking.invalid-plan",
        title="The tracking plan is not valid",
        detail=count + ": " + "; ".join(f"{e.pointer or '/'} {e.detail}" for e in errors[:5]),
        errors=errors,
    )


def parse_plan(document: object) -> ParsedPlan:
    """The plan in `document` (decoded JSON or YAML). Raises `MarketloopError` (invalid) listing every problem."""
    errors: list[FieldError] = []
    if not isinstance(document, dict):
        raise invalid_plan([FieldError(pointer="", detail=f"must be a mapping, got {_kind(document)}")])
    _unknown_keys(document, PLAN_KEYS, "", errors)
    version = document.get("version")
    if version is not None and (type(version) is not int or version < 0):
        errors.append(FieldError(pointer="/version", detail="must be a whole number ≥ 0"))
        version = None
    allow = _flag(document, "allow_unplanned_events", False, "", errors)
    events = [
        spec
        for name, body in _mapping(document.get("events"), "/events", errors).items()
        if (spec := _event(name, body, "/events/" + _escape(str(name)), errors)) is not None
    ]
    _check_promotions(events, errors)
    if errors:
        raise invalid_plan(errors)
    plan = TrackingPlan(version=version or 0, events=tuple(events), allow_unplanned_events=allow)
    return ParsedPlan(plan=plan, based_on_version=version)


def plan_document(plan: TrackingPlan) -> dict[str, Any]:
    """The document of `plan`, defaults left out; `parse_plan` of it gives the plan back."""
    return {
        "version": plan.version,
        "allow_unplanned_events": plan.allow_unplanned_events,
        "events": {event.name: _event_document(event) for event in plan.events},
    }


def _event_document(event: EventSpec) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if event.description:
        body["description"] = event.description
    if not event.allow_unplanned_properties:
        body["allow_unplanned_properties"] = False
    body["properties"] = {p.name: _property_document(p) for p in event.properties}
    return body


def _property_document(prop: PropertySpec) -> dict[str, Any]:
    body: dict[str, Any] = {"type": prop.type}
    if prop.required:
        body["required"] = True
    if prop.allowed is not None:
        body["allowed"] = list(prop.allowed)
    if prop.promote:
        body["promote"] = True
    if prop.description:
        body["description"] = prop.description
    return body


def _event(name: object, body: object, path: str, errors: list[FieldError]) -> EventSpec | None:
    if not _name_ok(name, path, errors):
        return None
    if body is None:
        body = {}
    if not isinstance(body, dict):
        errors.append(FieldError(pointer=path, detail=f"must be a mapping, got {_kind(body)}"))
        return None
    _unknown_keys(body, EVENT_KEYS, path, errors)
    properties = [
        spec
        for prop, prop_body in _mapping(body.get("properties"), path + "/properties", errors).items()
        if (spec := _property(prop, prop_body, f"{path}/properties/{_escape(str(prop))}", errors)) is not None
    ]
    return EventSpec(
        name=str(name),
        properties=tuple(properties),
        allow_unplanned_properties=_flag(body, "allow_unplanned_properties", True, path, errors),
        description=_text(body, "description", path, errors),
    )


def _property(name: object, body: object, path: str, errors: list[FieldError]) -> PropertySpec | None:
    if not _name_ok(name, path, errors):
        return None
    if isinstance(body, str):
        body = {"type": body}
    if not isinstance(body, dict):
        errors.append(FieldError(pointer=path, detail=f"must be a mapping or a type name, got {_kind(body)}"))
        return None
    _unknown_keys(body, PROPERTY_KEYS, path, errors)
    kind = body.get("type")
    if kind not in PROPERTY_TYPES:
        errors.append(FieldError(pointer=path + "/type", detail=f"must be one of {', '.join(PROPERTY_TYPES)}"))
        return None
    promote = _flag(body, "promote", False, path, errors)
    if promote and kind not in PROMOTABLE_TYPES:
        errors.append(FieldError(pointer=path + "/promote", detail=f"a property of type {kind} cannot be a column"))
    return PropertySpec(
        name=str(name),
        type=cast(PropertyType, kind),
        required=_flag(body, "required", False, path, errors),
        allowed=_allowed(body.get("allowed"), str(kind), path + "/allowed", errors),
        promote=promote,
        description=_text(body, "description", path, errors),
    )


def _allowed(values: object, kind: str, path: str, errors: list[FieldError]) -> tuple[AllowedValue, ...] | None:
    if values is None:
        return None
    if kind not in SCALAR_TYPES:
        errors.append(FieldError(pointer=path, detail=f"allowed values apply to scalar types, not {kind}"))
        return None
    if not isinstance(values, list) or not values:
        errors.append(FieldError(pointer=path, detail="must be a non-empty list"))
        return None
    accepted = PYTHON_TYPES[kind]
    for index, value in enumerate(values):
        if type(value) not in accepted:
            errors.append(FieldError(pointer=f"{path}/{index}", detail=f"{value!r} is not a {kind}"))
    return tuple(cast(list[AllowedValue], values))


def _check_promotions(events: list[EventSpec], errors: list[FieldError]) -> None:
    """A promoted property becomes one column, so every event must give it the same type."""
    first: dict[str, tuple[str, str]] = {}
    for event in events:
        for prop in event.properties:
            if not prop.promote:
                continue
            path = f"/events/{_escape(event.name)}/properties/{_escape(prop.name)}/type"
            seen = first.setdefault(prop.name, (prop.type, path))
            if seen[0] != prop.type:
                errors.append(FieldError(pointer=path, detail=f"promoted as {seen[0]} at {seen[1]}; use one type"))


def _mapping(value: object, path: str, errors: list[FieldError]) -> dict[object, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(FieldError(pointer=path, detail=f"must be a mapping of names, got {_kind(value)}"))
        return {}
    return value


def _name_ok(name: object, path: str, errors: list[FieldError]) -> bool:
    if isinstance(name, str) and name.strip() and name == name.strip():
        return True
    errors.append(FieldError(pointer=path, detail=f"a name must be non-empty text without edge spaces: {name!r}"))
    return False


def _flag(body: dict[Any, Any], key: str, default: bool, path: str, errors: list[FieldError]) -> bool:
    value = body.get(key, default)
    if type(value) is bool:
        return value
    errors.append(FieldError(pointer=f"{path}/{key}", detail=f"must be true or false, got {value!r}"))
    return default


def _text(body: dict[Any, Any], key: str, path: str, errors: list[FieldError]) -> str:
    value = body.get(key, "")
    if isinstance(value, str):
        return value
    errors.append(FieldError(pointer=f"{path}/{key}", detail="must be text"))
    return ""


def _unknown_keys(body: dict[Any, Any], known: frozenset[str], path: str, errors: list[FieldError]) -> None:
    for key in body:
        if key not in known:
            expected = ", ".join(sorted(known))
            errors.append(FieldError(pointer=f"{path}/{_escape(str(key))}", detail=f"unknown key; expected {expected}"))


def _escape(name: str) -> str:
    """A name as one JSON pointer segment (RFC 6901)."""
    return name.replace("~", "~0").replace("/", "~1")


def _kind(value: object) -> str:
    return type(value).__name__
