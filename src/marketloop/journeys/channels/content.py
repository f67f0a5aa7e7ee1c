"""Rendering a touch's text: `{name}` placeholders filled from variables, and the SMS's signature and opt-out.

A placeholder without a value is an error that names every missing variable,
never a message with a hole in it. `{{` and `}}` stand for literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]{0,63})\}|\{|\}")
MAX_TEXT = 4000


def placeholders(template: str) -> list[str]:
    """The variable names `template` uses, in order of first use."""
    names = [m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1)]
    return list(dict.fromkeys(names))


def render(template: str, variables: Mapping[str, str], *, pointer: str = "/content") -> str:
    """`template` with every `{name}` filled; `MarketloopError` (invalid) naming missing variables or a stray brace."""
    if len(template) > MAX_TEXT:
        raise _invalid("content.too-long", f"Content is longer than {MAX_TEXT} characters", pointer, [])
    missing = [name for name in placeholders(template) if name not in variables]
    if missing:
        errors = [FieldError(pointer=f"{pointer}/variables/{name}", detail="no value given") for name in missing]
        raise _invalid("content.missing-variables", "Content variables have no value", ", ".join(missing), errors)
    out: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        out.append(template[position : match.start()])
        token = match.group(0)
        if token in ("{{", "}}"):
            out.append(token[0])
        elif match.group(1):
            out.append(str(variables[match.group(1)]))
        else:
            raise _invalid("content.stray-brace", "A lone { or } in content (write {{ or }})", token, [])
        position = match.end()
    out.append(template[position:])
    return "".join(out)


def decorate_sms(text: str, *, signature: str, opt_out: str, marketing: bool) -> str:
    """The SMS as sent: the registered signature 【…】 first (unless present) and, for marketing, the opt-out."""
    body = text.strip()
    if signature and not body.startswith(signature):
        body = signature + body
    if marketing and opt_out and opt_out not in body:
        body = f"{body}{opt_out}"
    return body


def _invalid(code: str, title: str, detail: str, errors: list[FieldError]) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.INVALID, code=code, title=title, detail=detail, errors=errors)
