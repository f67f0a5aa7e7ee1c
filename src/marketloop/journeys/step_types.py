"""Journey step types that describe themselves: their settings (a typed struct, hence a JSON Schema) and outcomes.

The console's canvas and the API validation read the same description
(Tracardi's plugin spec is the model): `STEP_TYPES[name].schema()` is the
settings' JSON Schema, `outcomes(settings)` the named exits a step of that
type has, and `terminal` / `listener` say how it sits in the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from marketloop.journeys.triggers import EventMatch, PropertyFilter
from marketloop.ports.journeys import FIELD_NAME

Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
# the names `marketloop serve` configures its channels under (`app.channels`); "best": the learned preference
Channel = Literal["sms", "push", "wecom", "wechat", "email", "webhook", "inapp", "rm", "call", "best"]


class _Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class EntrySettings(_Settings):
    """How customers enter (进入方式):

    - `trigger`: each fire of `trigger_id` lets its customer in (an event, a sequence, an absence, a
      segment entered / exited, an attribute change, a date, an API trigger);
    - `segment`: the members of `segment_id` when the journey is first published, once;
    - `schedule`: at each fire of the schedule (cron) trigger `trigger_id`, the members of `segment_id`
      at that moment (a scheduled batch, 定时批量);
    - `api`: the customers a caller names (`POST /v1/journeys/{id}/entries`).
    """

    source: Literal["trigger", "segment", "schedule", "api"]
    trigger_id: str | None = None
    segment_id: str | None = None
    re_entry: Literal["never", "after_exit", "always"] = "never"
    re_entry_after: timedelta | None = None  # with after_exit: not again within this time


class WaitSettings(_Settings):
    """Wait a duration, until a local time of day, or for an event with a timeout (exactly one)."""

    duration: timedelta | None = None
    until: time | None = None
    timezone: str = "Asia/Shanghai"
    event: EventMatch | None = None
    timeout: timedelta | None = None


class BranchCondition(_Settings):
    name: Name
    where: list[PropertyFilter]
    on: Literal["profile", "tags", "event"] = "profile"


class BranchSettings(_Settings):
    """The first condition that holds names the outcome; none: `else`."""

    conditions: list[BranchCondition]


class Variant(_Settings):
    name: Name
    weight: Annotated[float, msgspec.Meta(gt=0)] = 1.0


class SplitSettings(_Settings):
    """Random A/B/n by weight, after setting aside `holdout_percent` % as the holdout (对照组)."""

    variants: list[Variant]
    holdout_percent: Annotated[float, msgspec.Meta(ge=0, lt=100)] = 0.0
    seed: str = ""  # the same customer lands in the same variant for the same seed


class SendSettings(_Settings):
    """A touch (触达): a channel (or the learned best one), a template with its variables, a benefit (权益)."""

    channel: Channel
    template: str
    variables: dict[str, str] = {}
    benefit_id: str | None = None
    fallback: list[Channel] = []  # multi-wave: try these in order when the channel fails or is suppressed
    purpose: Literal["marketing", "service", "risk"] = "marketing"


class GoalSettings(_Settings):
    """A conversion: when the customer does it (within `within` of entering), the journey ends and is attributed.

    `value_property` names the event property that holds the conversion's money (e.g. `amount` of `buy_fund`,
    in yuan): it is recorded with the conversion, and a split's experiment reports revenue per customer from it.
    """

    event: EventMatch
    within: timedelta | None = None
    value_property: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None


class UpdateSettings(_Settings):
    """Set (or, with `remove`, clear) the customer's value of a static tag (导入标签, `tag`) or of a profile field
    (自定义属性, `field`: a lower-case name); the value may read the entry's context (`$properties.x`). Queued
    in the outbox like a touch, so it is done once."""

    tag: Annotated[str, msgspec.Meta(max_length=64)] = ""
    field: Annotated[str, msgspec.Meta(pattern=f"^$|{FIELD_NAME}")] = ""
    value: str = "true"
    remove: bool = False

    @property
    def target(self) -> str:
        """What the update sets: the tag's name or the field's."""
        return self.tag or self.field


Priority = Literal["low", "normal", "high", "urgent"]


class RmTaskSettings(_Settings):
    """A task for a relationship manager (客户经理任务) in the RM workbench: `queue` is the RM's id or a team
    queue (empty: the configured default queue); `note` a template like a send's, with `variables`."""

    title: Annotated[str, msgspec.Meta(max_length=150)]
    note: str
    queue: Annotated[str, msgspec.Meta(max_length=100)] = ""
    variables: dict[str, str] = {}
    due_in: timedelta | None = None  # the task is due this long after it is created
    priority: Priority = "normal"
    timezone: str = "Asia/Shanghai"  # of the due time the task shows
    purpose: Literal["marketing", "service", "risk"] = "service"


class WebhookSettings(_Settings):
    """A signed POST to a bank system (call-centre list, CRM) through a configured webhook channel; `payload` is a
    template like a send's (its `body`), the `variables` go along as JSON."""

    payload: str
    channel: Name = "webhook"  # the configured webhook channel's name
    variables: dict[str, str] = {}
    purpose: Literal["marketing", "service", "risk"] = "marketing"


class ExitSettings(_Settings):
    reason: str = ""


class JourneyCap(_Settings):
    """At most `limit` touches of this journey per customer per `period` (on one channel, or on all)."""

    limit: Annotated[int, msgspec.Meta(ge=0)]
    period: Literal["day", "week", "month"]
    channel: Literal["sms", "push", "wecom", "wechat", "email", "inapp", "call", "rm"] | None = None  # a channel kind
    purposes: list[Literal["marketing", "service", "risk"]] = msgspec.field(default_factory=lambda: ["marketing"])


class JourneyPolicy(_Settings):
    """The journey's own contact rules (旅程触达规则), on top of the bank's: its priority when several
    journeys want the same customer the same day, its frequency caps, and its budget in fen (分)."""

    priority: int = 0
    caps: list[JourneyCap] = []
    budget_fen: Annotated[int, msgspec.Meta(ge=0)] | None = None
    # 退出规则: the customer doing one of these while in the journey ends the run (`exited`, not a conversion)
    exit_on: list[EventMatch] = []


@dataclass(frozen=True, kw_only=True)
class StepType:
    """One kind of step. `listener` steps (goals) watch the whole journey and need no incoming edge."""

    name: str
    title: str  # 中文 first: the console's language
    settings: type[_Settings]
    outcomes: Callable[[Any], list[str]]
    check: Callable[[Any], list[tuple[str, str]]]  # (pointer below /settings, message)
    terminal: bool = False
    listener: bool = False

    def schema(self) -> dict[str, Any]:
        found: dict[str, Any] = msgspec.json.schema(self.settings)
        return found

    def describe(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "title": self.title,
            "settings_schema": self.schema(),
            "outcomes": "per settings" if self.name in ("branch", "split", "wait") else self.outcomes(None),
            "terminal": self.terminal,
            "listener": self.listener,
        }


def _none(_: object) -> list[tuple[str, str]]:
    return []


def _check_entry(settings: EntrySettings) -> list[tuple[str, str]]:
    needs = {"trigger": ("trigger_id",), "segment": ("segment_id",), "schedule": ("trigger_id", "segment_id")}
    for field in needs.get(settings.source, ()):
        if getattr(settings, field) is None:
            return [(f"/{field}", f"an entry from a {settings.source} names its {field}")]
    return []


def _check_wait(settings: WaitSettings) -> list[tuple[str, str]]:
    modes = [settings.duration is not None, settings.until is not None, settings.event is not None]
    if sum(modes) != 1:
        return [("", "a wait has exactly one of duration, until and event")]
    if settings.event is not None and settings.timeout is None:
        return [("/timeout", "waiting for an event needs a timeout")]
    if settings.duration is not None and settings.duration <= timedelta(0):
        return [("/duration", "a wait lasts a positive time")]
    return []


def _wait_outcomes(settings: WaitSettings | None) -> list[str]:
    return ["event", "timeout"] if settings is not None and settings.event is not None else ["next"]


def _unique(names: list[str], what: str) -> list[tuple[str, str]]:
    seen: set[str] = set()
    for number, name in enumerate(names):
        if name in seen or name in ("else", "holdout"):
            return [(f"/{what}/{number}/name", f"{what} names are unique and not else / holdout: {name!r}")]
        seen.add(name)
    return []


def _check_branch(settings: BranchSettings) -> list[tuple[str, str]]:
    if not settings.conditions:
        return [("/conditions", "a branch has at least one condition")]
    return _unique([c.name for c in settings.conditions], "conditions")


def _check_split(settings: SplitSettings) -> list[tuple[str, str]]:
    if len(settings.variants) < 1 or (len(settings.variants) < 2 and settings.holdout_percent == 0):
        return [("/variants", "a split has two variants, or one and a holdout")]
    return _unique([v.name for v in settings.variants], "variants")


def _split_outcomes(settings: SplitSettings) -> list[str]:
    return [v.name for v in settings.variants] + (["holdout"] if settings.holdout_percent > 0 else [])


def _check_send(settings: SendSettings) -> list[tuple[str, str]]:
    if not settings.template.strip():
        return [("/template", "a send names its template")]
    if settings.channel in settings.fallback:
        return [("/fallback", "the fallback repeats the first channel")]
    return []


def _check_update(settings: UpdateSettings) -> list[tuple[str, str]]:
    if bool(settings.tag.strip()) == bool(settings.field):
        return [("", "an update sets exactly one of tag (a static tag) and field (a profile field)")]
    if not settings.remove and not settings.value.strip():
        return [("/value", "an update sets a value (or removes the tag with remove: true)")]
    return []


def _check_rm_task(settings: RmTaskSettings) -> list[tuple[str, str]]:
    if not settings.title.strip():
        return [("/title", "an RM task has a title")]
    if not settings.note.strip():
        return [("/note", "an RM task has a note (what the RM should do)")]
    if settings.due_in is not None and settings.due_in <= timedelta(0):
        return [("/due_in", "an RM task is due a positive time after it is created")]
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return [("/timezone", f"unknown time zone {settings.timezone!r}")]
    return []


def _check_webhook(settings: WebhookSettings) -> list[tuple[str, str]]:
    if not settings.payload.strip():
        return [("/payload", "a webhook names its payload template")]
    return []


STEP_TYPES: dict[str, StepType] = {
    step.name: step
    for step in (
        StepType(
            name="entry", title="进入 entry", settings=EntrySettings, outcomes=lambda _: ["next"], check=_check_entry
        ),
        StepType(name="wait", title="等待 wait", settings=WaitSettings, outcomes=_wait_outcomes, check=_check_wait),
        StepType(
            name="branch",
            title="条件分支 branch",
            settings=BranchSettings,
            outcomes=lambda s: [c.name for c in s.conditions] + ["else"],
            check=_check_branch,
        ),
        StepType(
            name="split", title="随机分流 split", settings=SplitSettings, outcomes=_split_outcomes, check=_check_split
        ),
        StepType(
            name="send",
            title="触达 send",
            settings=SendSettings,
            outcomes=lambda _: ["sent", "suppressed", "failed"],
            check=_check_send,
        ),
        StepType(
            name="update",
            title="更新标签 update",
            settings=UpdateSettings,
            outcomes=lambda _: ["done", "failed"],
            check=_check_update,
        ),
        StepType(
            name="rm_task",
            title="客户经理任务 rm_task",
            settings=RmTaskSettings,
            outcomes=lambda _: ["created", "failed"],
            check=_check_rm_task,
        ),
        StepType(
            name="webhook",
            title="推送外部系统 webhook",
            settings=WebhookSettings,
            outcomes=lambda _: ["sent", "failed"],
            check=_check_webhook,
        ),
        StepType(
            name="goal",
            title="目标 goal",
            settings=GoalSettings,
            outcomes=lambda _: [],
            check=_none,
            terminal=True,
            listener=True,
        ),
        StepType(
            name="exit", title="退出 exit", settings=ExitSettings, outcomes=lambda _: [], check=_none, terminal=True
        ),
    )
}
