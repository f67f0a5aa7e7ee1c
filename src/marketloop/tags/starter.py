"""The starter tag library (标签库) shipped with marketloop: TOML files in `marketloop/tags/library/`.

Each file sets defaults (`category`, `business_line`, `snapshots`, `owner`)
for its `[[tag]]` entries; an entry has `name`, `title`, optional
`description`, and either `when` (a yes / no tag) or `cases` and `else` (a
value tag), conditions written in the segment language's text form.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from marketloop.core.errors import FieldError
from marketloop.ports.tags import Snapshots, TagCategory, TagKind
from marketloop.tags.definitions import TagDraft, invalid

_DEFAULTS = ("category", "business_line", "snapshots", "owner")
_ENTRY = {"name", "title", "description", "when", "cases", "else", *_DEFAULTS}


def starter_files() -> list[Path]:
    folder = resources.files("marketloop.tags") / "library"
    return sorted(Path(str(item)) for item in folder.iterdir() if item.name.endswith(".toml"))


def load_library(files: list[Path] | None = None) -> list[TagDraft]:
    """Every tag of the library files (default: the starter library), in file order."""
    drafts: list[TagDraft] = []
    for path in files if files is not None else starter_files():
        drafts += _file(path)
    names = [d.name for d in drafts]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise invalid("duplicate-name", "The tag library names a tag twice", ", ".join(duplicates))
    return drafts


def _file(path: Path) -> list[TagDraft]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise invalid("bad-library", f"Cannot read the tag library file {path.name}", str(error)) from None
    defaults = {key: doc[key] for key in _DEFAULTS if key in doc}
    entries = doc.get("tag", [])
    return [_draft(path.name, i, {**defaults, **entry}) for i, entry in enumerate(entries)]


def _draft(file: str, index: int, entry: Mapping[str, Any]) -> TagDraft:
    where = f"{file}: tag {index + 1} ({entry.get('name', '?')})"
    unknown = sorted(set(entry) - _ENTRY)
    if unknown or "name" not in entry or "title" not in entry:
        detail = f"unknown key {unknown[0]!r}" if unknown else "name and title are required"
        raise invalid(
            "bad-library", f"{where} is not valid", detail, [FieldError(pointer=f"/tag/{index}", detail=detail)]
        )
    definition = {key: entry[key] for key in ("when", "cases", "else") if key in entry}
    try:
        return TagDraft(
            name=entry["name"],
            title=entry["title"],
            kind=TagKind.RULE,
            category=TagCategory(entry.get("category", "")),
            description=entry.get("description", ""),
            owner=entry.get("owner", "marketloop"),
            business_line=entry.get("business_line", "retail"),
            shared_with=("*",),
            definition=definition,
            snapshots=Snapshots(entry.get("snapshots", "none")),
        )
    except ValueError as error:
        raise invalid("bad-library", f"{where} is not valid", str(error)) from None
