"""Field-level protection of personal data: AES-GCM encryption and keyed hashes.

Personal fields (name, phone, ID number, email) are stored encrypted, with a
keyed hash (HMAC-SHA256) beside them for exact-match lookup, so a stolen
database file yields neither the values nor a dictionary attack on them
(the hash key is not in the database). Ciphertexts carry their key id, so keys
can be rotated: new writes use the newest key, old ciphertexts still decrypt
until they are re-encrypted.

Format of a ciphertext: `v1.<key id>.<base64url(nonce || ciphertext || tag)>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from marketloop.core.errors import ErrorKind, MarketloopError

NONCE_BYTES = 12


def generate_key() -> bytes:
    """A new random 256-bit AES key."""
    return AESGCM.generate_key(bit_length=256)


@dataclass(frozen=True, kw_only=True)
class FieldKeys:
    """Encryption keys by id (the last is current) and the key for keyed hashes."""

    encryption: dict[str, bytes]
    current: str
    hashing: bytes

    @classmethod
    def generate(cls, key_id: str = "k1") -> FieldKeys:
        return cls(encryption={key_id: generate_key()}, current=key_id, hashing=os.urandom(32))


class FieldCipher:
    """Encrypts, decrypts and hashes personal field values with `FieldKeys`."""

    def __init__(self, keys: FieldKeys) -> None:
        if keys.current not in keys.encryption:
            raise ValueError(f"current key {keys.current!r} is not among the keys")
        self._keys = keys
        self._aead = {key_id: AESGCM(key) for key_id, key in keys.encryption.items()}

    @property
    def current_key(self) -> str:
        """The id of the key new ciphertexts use."""
        return self._keys.current

    @property
    def key_ids(self) -> list[str]:
        """Ids of every key this cipher can decrypt with."""
        return list(self._keys.encryption)

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """Ciphertext of `plaintext`; `context` (e.g. the column name) is bound as associated data."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self._keys.current].encrypt(nonce, plaintext.encode(), context.encode())
        return f"v1.{self._keys.current}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, ciphertext: str, *, context: str = "") -> str:
        try:
            version, key_id, payload = ciphertext.split(".", 2)
            raw = base64.urlsafe_b64decode(payload)
            if version != "v1" or key_id not in self._aead:
                raise ValueError(f"unknown version or key {version}.{key_id}")
            return self._aead[key_id].decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
        except (InvalidTag, ValueError, UnicodeDecodeError) as error:  # all mean "cannot be decrypted"
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="crypto.undecryptable",
                title="A protected field cannot be decrypted",
                detail=f"{type(error).__name__}: wrong key, tampered data or not a marketloop ciphertext",
            ) from None

    def needs_rotation(self, ciphertext: str) -> bool:
        return not ciphertext.startswith(f"v1.{self._keys.current}.")

    def rotate(self, ciphertext: str, *, context: str = "") -> str:
        """The same value encrypted under the current key."""
        return self.encrypt(self.decrypt(ciphertext, context=context), context=context)

    def keyed_hash(self, kind: str, value: str) -> str:
        """HMAC-SHA256 of a normalised value, separated by `kind` so equal strings of two types differ."""
        return hmac.new(self._keys.hashing, f"{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()
