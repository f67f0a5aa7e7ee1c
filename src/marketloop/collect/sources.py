"""Sources and write keys: create, list, disable, and authenticate a request's key.

Write keys are random 192-bit tokens, so a SHA-256 of the key is a safe
lookup hash (a slow password hash would only slow down every request). The
plain key is shown once, at creation. Lookups are cached for a few seconds so
the hot path does not touch the database; a key disabled from the CLI is
refused within `cache_seconds`.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import replace

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.clock import Clock
from marketloop.ports.state import Source, SourceRepository, TrackingMode

KEY_PREFIX = "mlwk_"


def hash_key(write_key: str) -> str:
    return hashlib.sha256(write_key.encode()).hexdigest()


def unauthenticated(detail: str) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.UNAUTHENTICATED,
        code="collect.unauthenticated",
        title="The write key is missing, unknown or disabled",
        detail=detail,
    )


class SourceService:
    """Manages sources and answers "which source does this key belong to?"."""

    def __init__(
        self,
        repository: SourceRepository,
        clock: Clock,
        *,
        cache_seconds: float = 2.0,
        audit: AuditRecorder | None = None,
    ) -> None:
        self._repository = repository
        self._clock = clock
        self._audit = audit
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Source | None]] = {}

    def create(
        self,
        name: str,
        *,
        tracking_mode: TrackingMode = TrackingMode.WARN,
        project: str | None = None,
        write_key: str | None = None,
    ) -> tuple[Source, str]:
        """A new enabled source and its write key (shown only now)."""
        if not name.strip():
            raise MarketloopError(kind=ErrorKind.INVALID, code="sources.invalid-name", title="A source needs a name")
        key = write_key or KEY_PREFIX + secrets.token_urlsafe(24)
        source = Source(
            id=uuid.uuid4().hex,
            name=name.strip(),
            key_hash=hash_key(key),
            enabled=True,
            tracking_mode=tracking_mode,
            project=project,
            created_at=self._clock.now(),
        )
        self._repository.add(source)
        self._record("source.create", source, tracking_mode=tracking_mode.value, project=project)
        return source, key

    def list(self) -> list[Source]:
        return self._repository.list()

    def get(self, name_or_id: str) -> Source:
        source = self._repository.get(name_or_id)
        if source is None:
            raise MarketloopError(
                kind=ErrorKind.NOT_FOUND, code="sources.not-found", title="No such source", detail=name_or_id
            )
        return source

    def set_enabled(self, name_or_id: str, enabled: bool) -> Source:
        source = replace(self.get(name_or_id), enabled=enabled)
        self._repository.update(source)
        self._cache.clear()
        self._record("source.enable" if enabled else "source.disable", source)
        return source

    def set_tracking_mode(self, name_or_id: str, mode: TrackingMode) -> Source:
        source = replace(self.get(name_or_id), tracking_mode=mode)
        self._repository.update(source)
        self._cache.clear()
        self._record("source.set-mode", source, tracking_mode=mode.value)
        return source

    def _record(self, action: str, source: Source, **details: object) -> None:
        if self._audit is not None:
            self._audit.record(action, f"source:{source.name}", details={"id": source.id, **details})

    def authenticate(self, write_key: str | None, project: str | None = None) -> Source:
        """The enabled source for this key (or, with no key, for this Sensors project).

        Raises `MarketloopError` (unauthenticated) for a missing, unknown or disabled key.
        """
        if write_key:
            source = self._cached(("key", hash_key(write_key)))
        elif project:
            source = self._cached(("project", project))
        else:
            raise unauthenticated("Send the write key as the HTTP Basic username or the writeKey field.")
        if source is None:
            raise unauthenticated(
                "No source has this write key." if write_key else f"No source for project {project!r}."
            )
        if not source.enabled:
            raise unauthenticated(f"The source {source.name!r} is disabled.")
        return source

    def _cached(self, lookup: tuple[str, str]) -> Source | None:
        now = self._clock.monotonic()
        cache_key = lookup[0] + ":" + lookup[1]
        hit = self._cache.get(cache_key)
        if hit is not None and now - hit[0] < self._cache_seconds:
            return hit[1]
        if lookup[0] == "key":
            source = self._repository.by_key_hash(lookup[1])
        else:
            source = self._repository.by_project(lookup[1])
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[cache_key] = (now, source)
        return source
