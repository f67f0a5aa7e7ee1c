"""Passwords (argon2id via argon2-cffi) and opaque secrets (API tokens, session ids, CSRF tokens).

Passwords are slow-hashed: they are guessable. Tokens and session ids are
random 256-bit values, so a SHA-256 is a safe lookup hash and keeps every
authenticated request at one indexed read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError

TOKEN_PREFIX = "mlt_"  # noqa: S105 - a prefix, not a secret
MIN_PASSWORD = 10
MAX_PASSWORD = 200

_hasher = PasswordHasher()
# Verified against when the user does not exist, so a login takes as long for an unknown user.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def check_password_strength(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="access.weak-password",
            title="The password is not acceptable",
            errors=[FieldError(pointer="/password", detail=f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")],
        )


def hash_password(password: str) -> str:
    check_password_strength(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; takes an argon2 verification even when there is no hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
