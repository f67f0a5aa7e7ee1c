"""The configured channels by name, with what the console may show of their settings (never secrets)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.channels import Channel


@dataclass(frozen=True, kw_only=True)
class ConfiguredChannel:
    name: str
    kind: ChannelKind
    channel: Channel
    description: str  # e.g. "HTTP SMS gateway http://sms.bank.local/send"
    settings: Mapping[str, object] = field(default_factory=dict)  # shown settings; secrets masked by the wiring
    rate_per_second: float = 0.0


class ChannelRegistry:
    """Channels by name; `kind_of` tells policy which channel kind a name is."""

    def __init__(self, channels: list[ConfiguredChannel]) -> None:
        self._by_name = {c.name: c for c in channels}

    def __iter__(self) -> Iterator[ConfiguredChannel]:
        return iter(sorted(self._by_name.values(), key=lambda c: c.name))

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> ConfiguredChannel:
        found = self._by_name.get(name)
        if found is None:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise MarketloopError(
                kind=ErrorKind.NOT_FOUND,
                code="channels.unknown",
                title="No such channel is configured",
                detail=f"{name!r}; configured: {known}",
            )
        return found

    def names(self) -> list[str]:
        return sorted(self._by_name)
