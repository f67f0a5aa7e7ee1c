"""Settings: `marketloop.toml`, then `MARKETLOOP_*` environment variables, then command-line flags.

Each port's adapter is picked by a type string with its own settings block,
e.g. `[eventlog] type = "file"`; later issues add "nats", "kafka",
"clickhouse", "postgresql".
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from marketloop.app.channel_settings import ChannelsSettings, PolicySettings
from marketloop.core.identities import DEFAULT_TYPES, IdentifierType, IdentifierTypes, Normaliser, Protection


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileLogSettings(_Section):
    type: Literal["file"] = "file"
    partitions: int = Field(default=1, ge=1, le=256)
    segment_bytes: int = Field(default=256 << 20, ge=1 << 16)


class DuckDBSettings(_Section):
    type: Literal["duckdb"] = "duckdb"
    threads: int = Field(default=1, ge=1)
    dedupe_window_rows: int = Field(default=1_000_000, ge=0)


class StateSettings(_Section):
    """Operational store; empty `url` means SQLite in the data directory."""

    url: str = ""


class LoaderSettings(_Section):
    min_batch: int = Field(default=10_000, ge=1)
    max_batch: int = Field(default=200_000, ge=1)
    max_wait_seconds: float = Field(default=1.0, gt=0)


class StreamSettings(_Section):
    """The stream processor (triggers): records per batch, timers per round, idle poll interval.

    `realtime_segments`: saved segments whose membership changes are appended as `segment_entered` /
    `segment_exited` events (besides those any enabled segment trigger names); see docs/segments.md.
    """

    max_batch: int = Field(default=2_000, ge=1)
    timer_batch: int = Field(default=1_000, ge=1)
    poll_seconds: float = Field(default=0.02, gt=0, le=5)
    realtime_segments: list[str] = Field(default_factory=list)
    # where journey touches are sent from: "process" (a child process of `marketloop serve`, so sending does
    # not take the interpreter from collection, the stream processor and the walks), "thread" (in the
    # server process), "off" (another host runs `marketloop dispatch`). Tag updates stay in the server.
    dispatcher: Literal["process", "thread", "off"] = "process"


class SecuritySettings(_Section):
    """Where the field-encryption and hashing keys live; generated on first start when absent."""

    key_file: Path | None = None


class RetentionSettings(_Section):
    """How long raw events are kept; `marketloop events purge` deletes older ones (their daily counts stay)."""

    raw_event_days: int = Field(default=365, ge=1)


ChannelName = Literal["sms", "push", "wecom", "wechat", "email", "inapp", "call", "rm"]
_ALL_CHANNELS: list[ChannelName] = ["sms", "push", "wecom", "wechat", "email", "inapp", "call", "rm"]


DEFAULT_CHANNEL_COSTS = {
    "sms": 0.04,
    "push": 0.0,
    "inapp": 0.0,
    "wechat": 0.0,
    "wecom": 0.0,
    "email": 0.001,
    "call": 2.0,
    "rm": 15.0,
}


class ExperimentSettings(_Section):
    """Costs for the campaign effect's ROI (docs/experiments.md): yuan per sent touch, by channel.

    The defaults are placeholders of the usual order of magnitude; set the bank's own contract prices.
    """

    channel_costs: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_CHANNEL_COSTS))

    @field_validator("channel_costs", mode="before")
    @classmethod
    def _over_defaults(cls, value: object) -> object:
        """A channel the settings file does not name keeps its default price."""
        return {**DEFAULT_CHANNEL_COSTS, **value} if isinstance(value, dict) else value


class ConsentSettings(_Section):
    """Channels each purpose may use for a customer with no consent record (see docs/security.md)."""

    marketing_without_record: list[ChannelName] = ["inapp"]
    service_without_record: list[ChannelName] = list(_ALL_CHANNELS)
    risk_without_record: list[ChannelName] = list(_ALL_CHANNELS)


class ComplianceSettings(_Section):
    """The bank's own additions to the content compliance rules."""

    extra_banned: list[str] = []
    risk_notices: dict[str, str] = {}
    sms_opt_out: list[str] = []
    sms_signature_required: bool = True


class IdentifierTypeSettings(_Section):
    """A custom identifier type (e.g. a credit-card customer id); events carry it as `traits.<name>`."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    priority: int = Field(ge=0, le=1000)
    unique: bool = False
    protection: Literal["none", "hash"] = "none"
    normaliser: Literal["text", "phone", "id_card", "email"] = "text"
    description: str = ""


class IdentitySettings(_Section):
    """OneID's identifier types: the built-in ones re-ranked or made (non-)unique, and custom ones."""

    priorities: dict[str, int] = {}
    unique: dict[str, bool] = {}
    custom_types: list[IdentifierTypeSettings] = []

    @model_validator(mode="after")
    def _known_names(self) -> IdentitySettings:
        builtin = {t.name for t in DEFAULT_TYPES}
        unknown = sorted((set(self.priorities) | set(self.unique)) - builtin)
        if unknown:
            raise ValueError(f"no built-in identifier type {unknown}; built-in types are {sorted(builtin)}")
        clashes = sorted({c.name for c in self.custom_types} & builtin)
        if clashes:
            raise ValueError(f"custom identifier types {clashes} have the name of a built-in type")
        return self

    def types(self) -> IdentifierTypes:
        """The identifier types these settings configure."""
        builtin = [
            replace(t, priority=self.priorities.get(t.name, t.priority), unique=self.unique.get(t.name, t.unique))
            for t in DEFAULT_TYPES
        ]
        custom = [
            IdentifierType(
                name=c.name,
                priority=c.priority,
                unique=c.unique,
                protection=Protection(c.protection),
                normaliser=Normaliser(c.normaliser),
                description=c.description,
            )
            for c in self.custom_types
        ]
        return IdentifierTypes([*builtin, *custom])


class AccessSettings(_Section):
    """Console sessions and login throttling (see docs/security.md)."""

    session_hours: float = Field(default=8.0, gt=0, le=24 * 30)
    # Secure cookies need HTTPS; turn off only for a console on http://localhost.
    cookie_secure: bool = True
    login_max_failures_per_user: int = Field(default=5, ge=1)
    login_max_failures_per_client: int = Field(default=20, ge=1)
    login_window_seconds: float = Field(default=900.0, gt=0)
    login_lockout_seconds: float = Field(default=900.0, gt=0)


class RateLimitSettings(_Section):
    """Token buckets: requests per second and burst, per API token and per write key; a rate of 0 turns one off."""

    token_per_second: float = Field(default=20.0, ge=0)
    token_burst: int = Field(default=100, ge=1)
    write_key_per_second: float = Field(default=5_000.0, ge=0)
    write_key_burst: int = Field(default=10_000, ge=1)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MARKETLOOP_",
        env_nested_delimiter="__",
        toml_file="marketloop.toml",
        extra="forbid",
    )

    data_dir: Path = Path("marketloop-data")
    eventlog: FileLogSettings = FileLogSettings()
    warehouse: DuckDBSettings = DuckDBSettings()
    state: StateSettings = StateSettings()
    loader: LoaderSettings = LoaderSettings()
    experiments: ExperimentSettings = ExperimentSettings()
    stream: StreamSettings = StreamSettings()
    server: ServerSettings = ServerSettings()
    security: SecuritySettings = SecuritySettings()
    retention: RetentionSettings = RetentionSettings()
    consent: ConsentSettings = ConsentSettings()
    compliance: ComplianceSettings = ComplianceSettings()
    channels: ChannelsSettings = ChannelsSettings()
    policy: PolicySettings = PolicySettings()
    access: AccessSettings = AccessSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    identity: IdentitySettings = IdentitySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)

    @property
    def key_file(self) -> Path:
        return self.security.key_file or self.data_dir / "keys" / "field-keys.json"

    @property
    def state_url(self) -> str:
        return self.state.url or f"sqlite:///{(self.data_dir / 'state.sqlite').resolve()}"


def load_settings(config: Path | None = None, **overrides: object) -> Settings:
    """Settings from `config` (default ./marketloop.toml when present), the environment and `overrides`."""
    given = {key: value for key, value in overrides.items() if value is not None}
    if config is None:
        return Settings(**given)  # type: ignore[arg-type]

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=str(config))

    return _FromFile(**given)  # type: ignore[arg-type]
