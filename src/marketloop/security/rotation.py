"""Encryption key rotation (密钥轮换): a new current key, then every stored ciphertext re-encrypted under it.

Owns the order of a rotation and what makes it safe to interrupt:

1. `add_key` gives the key set a new current key (the caller saves the key
   file first, so a crash never leaves ciphertexts under a key that is not
   on disk);
2. `KeyRotation.reencrypt` pages through every `*_enc` column, taking only
   values that do not use the current key (`FieldCipher.needs_rotation`),
   and replaces each page in one transaction. Running it again resumes
   where it stopped; values that cannot be decrypted are counted and left
   as they are (they show in `status`).

The hash key is not rotated here: keyed hashes are lookup keys shared with
OneID and the importer; see docs/security.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from marketloop.core.errors import MarketloopError
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.personal_data import EncryptedColumn, PersonalDataStore
from marketloop.security.crypto import FieldCipher, FieldKeys, generate_key

_KEY_NUMBER = re.compile(r"^k(\d+)$")


def add_key(keys: FieldKeys) -> FieldKeys:
    """`keys` with a new random encryption key, named k<n+1>, made current; old keys stay for decryption."""
    numbers = [int(m.group(1)) for key_id in keys.encryption if (m := _KEY_NUMBER.match(key_id))]
    key_id = f"k{max(numbers, default=0) + 1}"
    while key_id in keys.encryption:  # only with hand-named keys
        key_id += "x"
    return FieldKeys(encryption={**keys.encryption, key_id: generate_key()}, current=key_id, hashing=keys.hashing)


def current_prefix(key_id: str) -> str:
    """How every ciphertext under `key_id` starts."""
    return f"v1.{key_id}."


@dataclass(frozen=True, kw_only=True)
class ColumnKeys:
    """How many values of one column use each key id, and how many do not use the current key."""

    column: EncryptedColumn
    by_key: dict[str, int]
    stale: int


@dataclass(frozen=True, kw_only=True)
class KeyStatus:
    current: str
    key_ids: list[str]
    columns: list[ColumnKeys]

    @property
    def stale(self) -> int:
        return sum(c.stale for c in self.columns)


@dataclass(kw_only=True)
class RotationResult:
    """What one `reencrypt` run did; `failed` values could not be decrypted and were left as they are."""

    key_id: str
    reencrypted: int = 0
    failed: int = 0
    by_column: dict[str, int] = field(default_factory=dict)


class KeyRotation:
    """Re-encrypts stored personal values under the cipher's current key; see the module docstring."""

    def __init__(
        self,
        store: PersonalDataStore,
        cipher: FieldCipher,
        *,
        audit: AuditRecorder | None = None,
        chunk: int = 5_000,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._audit = audit
        self._chunk = chunk

    def status(self) -> KeyStatus:
        """Key ids and, per encrypted column, values by key id and how many still need rotation."""
        columns = []
        for column in self._store.encrypted_columns():
            usage = self._store.key_usage(column)
            stale = sum(count for key_id, count in usage.items() if key_id != self._cipher.current_key)
            columns.append(ColumnKeys(column=column, by_key=usage, stale=stale))
        return KeyStatus(current=self._cipher.current_key, key_ids=self._cipher.key_ids, columns=columns)

    def reencrypt(self) -> RotationResult:
        """Re-encrypt every value not under the current key, one transaction per chunk; record it in the audit log."""
        result = RotationResult(key_id=self._cipher.current_key)
        for column in self._store.encrypted_columns():
            self._column(column, result)
        if self._audit is not None:
            details = {"reencrypted": result.reencrypted, "failed": result.failed, "columns": result.by_column}
            self._audit.record("keys.reencrypt", f"key:{result.key_id}", details=details)
        return result

    def _column(self, column: EncryptedColumn, result: RotationResult) -> None:
        prefix, after, done = current_prefix(self._cipher.current_key), "", 0
        while page := self._store.stale_ciphertexts(column, current_prefix=prefix, after=after, limit=self._chunk):
            after = page[-1]
            pairs = []
            for old in page:
                try:
                    pairs.append((old, self._cipher.rotate(old, context=column.column)))
                except MarketloopError:  # tampered, or under a key that is no longer in the key file
                    result.failed += 1
            done += self._store.replace_ciphertexts(column, pairs)
        result.reencrypted += done
        result.by_column[column.name] = done
