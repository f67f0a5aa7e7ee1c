"""Metric alerts (指标预警): thresholds and anomalies on a daily metric series, posted to a webhook and / or e-mailed.

A rule names a daily metric (an `events` analysis spec without a range or
grouping), the kind of test and where the alert goes: a `webhook` URL, a
list of `email` recipients, or both (sent through the e-mail channel's SMTP
server). `detect` is pure: given the day's value and the values before it,
it says whether and why to alert.

- threshold: the value is above `above` or below `below`;
- anomaly: the robust z-score `0.6745 · (x − median) / MAD` of the value
  against its baseline exceeds `z` in absolute value. The baseline is the
  same weekday of the previous `baseline_weeks` weeks when `seasonal`
  (weekly seasonality: Mondays against Mondays), else the previous
  `baseline_weeks · 7` days. With a MAD of 0 any change from the median is
  an anomaly. Fewer than `MIN_BASELINE` baseline points: no verdict.
"""

from __future__ import annotations

import re
import secrets
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from marketloop.analytics.parse import SpecError, spec_error
from marketloop.analytics.service import AnalyticsService
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.analytics import (
    AlertDelivery,
    AlertMailer,
    AlertMessage,
    AlertSink,
    AnalyticsRepository,
    RuleCheck,
    StoredRule,
)
from marketloop.ports.clock import Clock

MIN_BASELINE = 3
CONSISTENCY = 0.6745  # makes the MAD of a normal sample comparable to its standard deviation
MAX_RECIPIENTS = 50
# A plain address (local@domain.tld), no display name: what the rule lists goes to RCPT TO as written.
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


@dataclass(frozen=True, kw_only=True)
class AlertRule:
    name: str
    metric: Mapping[str, Any]  # an `events` spec without "range" (its interval is forced to day)
    kind: Literal["threshold", "anomaly"]
    webhook: str | None = None
    email: tuple[str, ...] = ()
    above: float | None = None
    below: float | None = None
    z: float = 3.5
    baseline_weeks: int = 4
    seasonal: bool = True


@dataclass(frozen=True, kw_only=True)
class Verdict:
    alert: bool
    reason: str
    baseline: float | None = None


@dataclass(frozen=True, kw_only=True)
class AlertCheck:
    rule: str
    day: date
    value: float
    verdict: Verdict
    deliveries: tuple[AlertDelivery, ...] = ()  # one per target (webhook, e-mail); empty when nothing was sent

    @property
    def delivery(self) -> AlertDelivery | None:
        """All deliveries as one: ok when every target took the alert; None when nothing was sent."""
        if not self.deliveries:
            return None
        failed = [d for d in self.deliveries if not d.ok]
        return AlertDelivery(
            ok=not failed,
            status=(failed or list(self.deliveries))[0].status,
            error="; ".join(f"{d.to}: {d.error}" for d in failed) or None,
            to="; ".join(d.to for d in self.deliveries),
        )


def detect(rule: AlertRule, value: float, history: Sequence[float]) -> Verdict:
    """Whether `value` (of the checked day) alerts; `history` is the days before it, oldest first."""
    if rule.kind == "threshold":
        if rule.above is not None and value > rule.above:
            return Verdict(alert=True, reason=f"{value:g} is above the threshold {rule.above:g}")
        if rule.below is not None and value < rule.below:
            return Verdict(alert=True, reason=f"{value:g} is below the threshold {rule.below:g}")
        return Verdict(alert=False, reason="within the thresholds")
    baseline = baseline_of(rule, history)
    if len(baseline) < MIN_BASELINE:
        return Verdict(alert=False, reason=f"only {len(baseline)} baseline days; need {MIN_BASELINE}")
    middle = statistics.median(baseline)
    spread = statistics.median(abs(v - middle) for v in baseline)
    if spread == 0:
        score = 0.0 if value == middle else float("inf") if value > middle else float("-inf")
    else:
        score = CONSISTENCY * (value - middle) / spread
    shown = f"robust z-score {score:.2f} against the median {middle:g} of {len(baseline)} baseline days"
    return Verdict(alert=abs(score) > rule.z, reason=shown, baseline=middle)


def baseline_of(rule: AlertRule, history: Sequence[float]) -> list[float]:
    """The baseline values: the same weekday of each previous week, or every previous day."""
    days = rule.baseline_weeks * 7
    recent = list(history[-days:])
    if not rule.seasonal:
        return recent
    return [recent[i] for i in range(len(recent) - 7, -1, -7)]


_RULE_KEYS = ("name", "metric", "kind", "webhook", "email", "above", "below", "z", "baseline_weeks", "seasonal")


def read_rule(doc: Any) -> AlertRule:
    """An alert rule from its JSON form; raises `SpecError` pointing at the bad spot."""
    if not isinstance(doc, Mapping):
        raise spec_error("", "an alert rule is a JSON object")
    for key in doc:
        if key not in _RULE_KEYS:
            raise spec_error(f"/{key}", f"unknown key {key!r}; allowed: {', '.join(_RULE_KEYS)}")
    _check_name(doc)
    webhook, email = _targets(doc)
    _check_metric(doc.get("metric"))
    kind = doc.get("kind")
    if kind not in ("threshold", "anomaly"):
        raise spec_error("/kind", f"kind is threshold or anomaly, not {kind!r}")
    numbers = _numbers(doc)
    if kind == "threshold" and "above" not in numbers and "below" not in numbers:
        raise spec_error("", "a threshold rule needs above, below or both")
    weeks = doc.get("baseline_weeks", 4)
    if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= 52:
        raise spec_error("/baseline_weeks", "baseline_weeks is a whole number from 1 to 52")
    return AlertRule(
        name=doc["name"],
        metric=dict(doc["metric"]),
        kind=kind,
        webhook=webhook,
        email=email,
        above=_float(numbers.get("above")),
        below=_float(numbers.get("below")),
        z=float(numbers.get("z", 3.5)),
        baseline_weeks=weeks,
        seasonal=bool(doc.get("seasonal", True)),
    )


def _check_name(doc: Mapping[str, Any]) -> None:
    if not isinstance(doc.get("name"), str) or not doc["name"].strip():
        raise spec_error("/name", "missing 'name'")


def _targets(doc: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    """The webhook and the e-mail recipients of a rule: at least one of them."""
    webhook = doc.get("webhook")
    if webhook is not None and (not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))):
        raise spec_error("/webhook", f"the webhook is an http(s) URL, not {webhook!r}")
    email = _recipients(doc.get("email", []))
    if webhook is None and not email:
        raise spec_error("", "an alert goes to a webhook, to e-mail recipients or both: add 'webhook' or 'email'")
    return webhook, email


def _recipients(listed: Any) -> tuple[str, ...]:
    if isinstance(listed, str):
        raise spec_error("/email", 'email is a list of addresses: ["ops@bank.example"]')
    if not isinstance(listed, list) or len(listed) > MAX_RECIPIENTS:
        raise spec_error("/email", f"email is a list of at most {MAX_RECIPIENTS} addresses")
    seen: set[str] = set()
    for index, address in enumerate(listed):
        if not isinstance(address, str) or not _ADDRESS.match(address):
            raise spec_error(f"/email/{index}", f"{address!r} is not an e-mail address (name@domain.example)")
        if address.lower() in seen:
            raise spec_error(f"/email/{index}", f"{address} is listed twice")
        seen.add(address.lower())
    return tuple(listed)


def _check_metric(metric: Any) -> None:
    if not isinstance(metric, Mapping) or metric.get("model") != "events" or "range" in metric:
        raise spec_error("/metric", 'the metric is an "events" analysis spec without "range" (it is checked daily)')
    if metric.get("group_by") is not None:
        raise spec_error("/metric/group_by", "an alert's metric is one series: no group_by")


def _numbers(doc: Mapping[str, Any]) -> dict[str, float]:
    numbers = {key: doc[key] for key in ("above", "below", "z") if key in doc}
    for key, number in numbers.items():
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise spec_error(f"/{key}", f"expected a number, found {number!r}")
    return numbers


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class AlertService:
    """Checks rules against the daily metric series and delivers alerts to their webhooks and e-mail recipients.

    With a repository it also keeps rules (`add`, `change`, `delete`,
    `stored`) and runs them all once per day (`run`): a day already checked
    for a rule is not checked again, so the daily job may be repeated without
    sending twice. Without a `mailer` (no SMTP server configured) a rule with
    e-mail recipients is refused when it is added or checked.
    """

    def __init__(
        self,
        analytics: AnalyticsService,
        sink: AlertSink,
        clock: Clock,
        *,
        repository: AnalyticsRepository | None = None,
        mailer: AlertMailer | None = None,
        new_id: Callable[[], str] = lambda: "alr_" + secrets.token_hex(6),
    ) -> None:
        self._analytics = analytics
        self._sink = sink
        self._clock = clock
        self._repository = repository
        self._mailer = mailer
        self._new_id = new_id

    def _store(self) -> AnalyticsRepository:
        if self._repository is None:
            raise MarketloopError(kind=ErrorKind.CONFLICT, code="analytics.no-store", title="No rule store is wired")
        return self._repository

    def add(self, doc: Any) -> StoredRule:
        """Keep a rule (checked as `read_rule` does, its metric as an analysis spec)."""
        rule = self.read(doc)
        stored = StoredRule(
            rule_id=self._new_id(), name=rule.name, rule=dict(doc), enabled=True, created_at=self._clock.now()
        )
        self._store().add_rule(stored)
        return stored

    def change(self, rule_id: str, doc: Any, *, enabled: bool | None = None) -> StoredRule:
        """Replace a kept rule (checked as `add` checks it), optionally enabling or pausing it; its checks stay."""
        rule = self.read(doc)
        found = self.get(rule_id)
        changed = replace(found, name=rule.name, rule=dict(doc), enabled=found.enabled if enabled is None else enabled)
        if not self._store().replace_rule(changed):
            raise _no_rule(rule_id)
        return changed

    def delete(self, rule_id: str) -> None:
        """Forget a kept rule and its checks; NOT_FOUND when there is none."""
        if not self._store().delete_rule(rule_id):
            raise _no_rule(rule_id)

    def get(self, rule_id: str) -> StoredRule:
        for stored in self._store().rules():
            if stored.rule_id == rule_id:
                return stored
        raise _no_rule(rule_id)

    def history(self, rule_id: str, *, limit: int = 30) -> list[RuleCheck]:
        """The latest daily checks of a kept rule, newest first."""
        self.get(rule_id)
        return self._store().checks(rule_id, limit=limit)

    def read(self, doc: Any) -> AlertRule:
        """The rule of a JSON document, its metric compiled and its e-mail deliverable, or a clear error."""
        rule = read_rule(doc)
        self._need_mailer(rule)
        try:
            self._analytics.compile(self._analytics.parse(dict(rule.metric) | {"range": {"last": "1d"}}))
        except SpecError as error:
            raise _under_metric(error) from None
        return rule

    def _need_mailer(self, rule: AlertRule) -> None:
        if rule.email and self._mailer is None:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="analytics.no-mailer",
                title="E-mail alerts need an SMTP server",
                detail="set host (and sender) under [channels.email] in the configuration, or send to a webhook",
            )

    def stored(self) -> list[StoredRule]:
        return self._store().rules()

    def run(self, *, day: date | None = None) -> list[AlertCheck]:
        """Check every enabled stored rule on `day` (default: yesterday) unless it was checked that day already."""
        checked = day or self._yesterday()
        found = []
        for stored in self._store().rules():
            if not stored.enabled or self._checked(stored.rule_id, checked):
                continue
            result = self.check(read_rule(stored.rule), day=checked)
            delivery = result.delivery
            self._store().record_check(
                RuleCheck(
                    rule_id=stored.rule_id,
                    day=checked,
                    value=result.value,
                    alerted=result.verdict.alert,
                    reason=result.verdict.reason,
                    delivered=None if delivery is None else delivery.ok,
                    error=None if delivery is None else delivery.error,
                    checked_at=self._clock.now(),
                )
            )
            found.append(result)
        return found

    def _checked(self, rule_id: str, day: date) -> bool:
        return any(c.day == day for c in self._store().checks(rule_id, limit=400))

    def _yesterday(self) -> date:
        return self._clock.now().astimezone(UTC).date() - timedelta(days=1)

    def series(self, rule: AlertRule, day: date) -> tuple[float, list[float]]:
        """The metric on `day` and on each of the `baseline_weeks · 7` days before it (missing days are 0)."""
        zone = str(rule.metric.get("timezone", "UTC"))
        first = day - timedelta(days=rule.baseline_weeks * 7)
        doc = dict(rule.metric) | {
            "interval": "day",
            "range": {"from": _midnight(first, zone), "to": _midnight(day + timedelta(days=1), zone)},
        }
        try:
            found = self._analytics.query(doc).result["series"]
        except SpecError as error:
            raise _under_metric(error) from None
        values = {entry["bucket"]: float(entry["value"] or 0) for entry in found}
        days = [first + timedelta(days=i) for i in range((day - first).days + 1)]
        ordered = [values.get(d.isoformat(), 0.0) for d in days]
        return ordered[-1], ordered[:-1]

    def check(self, rule: AlertRule, *, day: date | None = None) -> AlertCheck:
        """Test `rule` on `day` (default: yesterday, the last complete day) and post an alert when it fires."""
        checked = day or self._yesterday()
        value, history = self.series(rule, checked)
        verdict = detect(rule, value, history)
        deliveries: tuple[AlertDelivery, ...] = ()
        if verdict.alert:
            message = AlertMessage(
                rule=rule.name,
                metric=str(rule.metric.get("event")),
                day=checked,
                value=value,
                reason=verdict.reason,
                kind=rule.kind,
                baseline=verdict.baseline,
                checked_at=self._clock.now(),
            )
            deliveries = self._deliver(rule, message)
        return AlertCheck(rule=rule.name, day=checked, value=value, verdict=verdict, deliveries=deliveries)

    def _deliver(self, rule: AlertRule, message: AlertMessage) -> tuple[AlertDelivery, ...]:
        """Post to the webhook and mail the recipients; a rule kept before SMTP was unset reports the failure."""
        sent = []
        if rule.webhook is not None:
            sent.append(self._sink.deliver(rule.webhook, message))
        if rule.email:
            to = ", ".join(rule.email)
            if self._mailer is None:
                sent.append(AlertDelivery(ok=False, status=None, error="no SMTP server ([channels.email] host)", to=to))
            else:
                sent.append(self._mailer.mail(rule.email, message))
        return tuple(sent)


def _no_rule(rule_id: str) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.NOT_FOUND, code="analytics.no-rule", title=f"No alert rule {rule_id}")


def _under_metric(error: SpecError) -> SpecError:
    return SpecError([replace(e, pointer="/metric" + e.pointer) for e in error.errors])


def _midnight(day: date, zone: str) -> str:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(zone)).isoformat()
