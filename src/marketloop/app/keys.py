"""The field-encryption key file: created once with fresh random keys, readable only by its owner."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import orjson

from marketloop.security.crypto import FieldKeys


def load_or_create(path: Path) -> FieldKeys:
    """The keys in `path`; a new file with new keys when it does not exist."""
    if path.exists():
        document = orjson.loads(path.read_bytes())
        return FieldKeys(
            encryption={k: base64.b64decode(v) for k, v in document["encryption"].items()},
            current=document["current"],
            hashing=base64.b64decode(document["hashing"]),
        )
    keys = FieldKeys.generate()
    save(path, keys)
    return keys


def save(path: Path, keys: FieldKeys) -> None:
    """Write `keys` atomically with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "current": keys.current,
        "encryption": {k: base64.b64encode(v).decode() for k, v in keys.encryption.items()},
        "hashing": base64.b64encode(keys.hashing).decode(),
    }
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
