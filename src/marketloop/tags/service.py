"""`TagService`: what the API and CLI call — define and version tags, install the library, refresh, read values.

Definitions live in the operational store (`TagRepository`), values in the
warehouse (`TagWarehouse`). Rule tags resolve against the segment catalog
(grown by the built profile's columns and by the known tags), so a rule tag
can use every field, holding, transaction and behaviour condition a segment
can, and other tags; a segment can use every tag.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from marketloop.core.bank import LogicalType
from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.core.events import as_utc
from marketloop.ports.clock import Clock
from marketloop.ports.segments import SegmentRepository
from marketloop.ports.tags import (
    Change,
    Lineage,
    TagKind,
    TagRepository,
    TagStats,
    TagValue,
    TagVersion,
    TagWarehouse,
)
from marketloop.segments.ast import Condition
from marketloop.segments.catalog import DEFAULT_CATALOG, ONE_ID_CATALOG, Catalog
from marketloop.segments.parse import from_json
from marketloop.tags.definitions import TRUE, BoundRule, TagDraft, bind_rule, check_name, invalid, parse_rule
from marketloop.tags.refresh import Progress, Refresher, RefreshReport, dependency_levels
from marketloop.tags.starter import load_library


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    tag: str
    change: Change
    rejected: list[str]  # cust_nos not in the bank


# Profile columns the segment catalog does not list but the profile always has (last seen per platform),
# so that the starter library resolves before the first profile refresh.
PROFILE_PLATFORM_FIELDS = {
    f"last_{platform}_at": LogicalType.TIMESTAMP for platform in ("app", "h5", "mini_program", "wechat", "branch")
}


# Events by the customer OneID attributes them to (the identity store's view), when it exists;
# else the segment catalog's `events.user_id`.
CUSTOMER_EVENTS = ONE_ID_CATALOG.events


@dataclass(kw_only=True)
class _Saving:
    """What saving tags checks against, read once per save (or once for a whole library)."""

    catalog: Catalog
    reads: dict[str, tuple[str, ...]]  # rule tag → the tags it reads


def _not_found(what: str) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.NOT_FOUND, code="tags.not-found", title=f"No tag {what}")


class TagService:
    """Tags (标签): versioned definitions, refreshes, values and their history."""

    def __init__(
        self,
        repository: TagRepository,
        warehouse: TagWarehouse,
        clock: Clock,
        *,
        catalog: Catalog = DEFAULT_CATALOG,
        segments: SegmentRepository | None = None,
        starter: Sequence[TagDraft] | None = None,
    ) -> None:
        """`starter`: the tags installed into an empty store on first use (default: the starter library)."""
        self._repository = repository
        self._warehouse = warehouse
        self._clock = clock
        self._catalog = catalog
        self._segments = segments
        self._starter = starter
        self._ensured = False

    # -- the catalog and binding ---------------------------------------------------------

    def catalog(self, extra: builtins.list[str] | None = None) -> Catalog:
        """The segment catalog with the built profile's columns and every known tag (plus `extra`)."""
        profile = self._catalog.relations.profile
        grown = self._catalog.with_columns(
            profile, {**PROFILE_PLATFORM_FIELDS, **(self._warehouse.columns(profile) or {})}
        )
        names = self._repository.names()
        if self._warehouse.columns(CUSTOMER_EVENTS.relation) is not None:
            grown = replace(grown, events=CUSTOMER_EVENTS)
        return grown.with_tags([*names, *(extra or [])])

    def _lookup(self, segment_id: str) -> Condition | None:
        found = self._segments.latest(segment_id) if self._segments is not None else None
        return from_json(found.definition) if found is not None else None

    def bind(self, tag: TagVersion, catalog: Catalog) -> BoundRule:
        """The resolved rule of a rule tag version."""
        return bind_rule(tag.name, parse_rule(tag.definition), catalog, self._lookup)

    # -- definitions -------------------------------------------------------------------------

    def create(self, draft: TagDraft) -> TagVersion:
        """Save `draft` as a new tag or as the next version of the tag of that name (every version is kept)."""
        check_name(draft.name)
        self._ensure_library()
        return self._save(draft, self._saving([draft.name]))

    def _saving(self, names: builtins.list[str]) -> _Saving:
        reads = {t.name: t.lineage.tags for t in self._repository.list() if t.kind == TagKind.RULE}
        return _Saving(catalog=self.catalog(names), reads=reads)

    def _save(self, draft: TagDraft, saving: _Saving) -> TagVersion:
        previous = self._repository.latest(draft.name)
        if previous is not None and previous.kind != draft.kind:
            raise invalid(
                "kind-changed",
                "A tag keeps its kind",
                f"{draft.name} is a {previous.kind.value} tag; create a new tag for a {draft.kind.value} one",
                [FieldError(pointer="/kind", detail=f"must stay {previous.kind.value}")],
            )
        definition, values, lineage = self._checked(draft, saving)
        version = TagVersion(
            name=draft.name,
            version=previous.version + 1 if previous else 1,
            kind=draft.kind,
            category=draft.category,
            title=draft.title,
            description=draft.description,
            owner=draft.owner,
            business_line=draft.business_line,
            shared_with=tuple(dict.fromkeys(draft.shared_with)),
            definition=definition,
            values=values,
            snapshots=draft.snapshots,
            lineage=lineage,
            created_at=self._clock.now(),
        )
        self._repository.add(version)
        if draft.kind == TagKind.RULE:
            saving.reads[draft.name] = lineage.tags
        return version

    def _checked(self, draft: TagDraft, saving: _Saving) -> tuple[dict[str, object] | None, tuple[str, ...], Lineage]:
        if draft.kind != TagKind.RULE:
            if draft.definition:
                raise invalid(
                    "definition-not-allowed",
                    f"A {draft.kind.value} tag has no rule definition",
                    "its values are imported (static), written by scoring (model) or by the stream processor",
                    [FieldError(pointer="/definition", detail="only rule tags have a definition")],
                )
            return None, tuple(dict.fromkeys(draft.values)), Lineage()
        rule = parse_rule(draft.definition)
        bound = bind_rule(draft.name, rule, saving.catalog, self._lookup)
        dependency_levels({**saving.reads, draft.name: bound.lineage.tags})  # raises on a cycle
        return rule.document(), rule.values(), bound.lineage

    def install_library(self, drafts: builtins.list[TagDraft] | None = None) -> builtins.list[TagVersion]:
        """Save the starter library's tags that are new or differ from their newest version; returns those saved."""
        chosen = drafts if drafts is not None else load_library()
        saving = self._saving([d.name for d in chosen])
        saved = []
        for draft in chosen:
            check_name(draft.name)
            current = self._repository.latest(draft.name)
            if current is not None and _same(current, draft):
                continue
            saved.append(self._save(draft, saving))
        return saved

    def list(self) -> builtins.list[TagVersion]:
        """The newest version of every tag (the starter library is installed into an empty store first)."""
        self._ensure_library()
        return self._repository.list()

    def names(self) -> builtins.list[str]:
        """What segment definitions may name: the defined tags (not retired) and any tag that has values."""
        self._ensure_library()
        return sorted({*self._repository.names(), *self._warehouse.tags_with_values()})

    def _ensure_library(self) -> None:
        if self._ensured:
            return
        self._ensured = True
        if not self._repository.list():
            self.install_library(list(self._starter) if self._starter is not None else None)

    def get(self, name: str, version: int | None = None) -> TagVersion:
        self._ensure_library()
        found = self._repository.latest(name) if version is None else self._repository.get(name, version)
        if found is None:
            raise _not_found(name if version is None else f"{name} version {version}")
        return found

    def versions(self, name: str) -> builtins.list[TagVersion]:
        self.get(name)
        return self._repository.versions(name)

    def retire(self, name: str) -> TagVersion:
        """Add a retired version (kept for lineage and history) and remove the tag's current values."""
        current = self.get(name)
        dependents = [t.name for t in self.list() if name in t.lineage.tags and not t.retired]
        if dependents:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="tags.in-use",
                title=f"Other tags read {name}",
                detail=", ".join(dependents),
            )
        retired = replace(current, version=current.version + 1, retired=True, created_at=self._clock.now())
        self._repository.add(retired)
        self._warehouse.remove(name, self._clock.now())
        return retired

    # -- values --------------------------------------------------------------------------------

    def refresh(
        self,
        *,
        as_of: datetime | None = None,
        only: builtins.list[str] | None = None,
        full: bool = False,
        progress: Progress | None = None,
    ) -> RefreshReport:
        """Recompute the rule tags whose definition or inputs changed (all with `full`; `only` those named)."""
        moment = as_utc(as_of) if as_of is not None else self._clock.now()
        current = {t.name: t for t in self.list() if t.kind == TagKind.RULE and not t.retired}
        for name in only or []:
            if self.get(name).kind != TagKind.RULE:
                raise invalid("not-a-rule-tag", f"{name} is not a rule tag", "only rule tags are refreshed")
        catalog = self.catalog()
        rules = {name: self.bind(tag, catalog) for name, tag in current.items()}
        self._check_relations({name: rule for name, rule in rules.items() if not only or name in only})
        refresher = Refresher(self._warehouse, catalog, self._clock)
        report = refresher.run(
            current,
            rules,
            self._repository.last_stats(),
            moment,
            full=full,
            only=set(only) if only else None,
            progress=progress,
        )
        self._repository.add_run(report.run, report.stats)
        return report

    def _check_relations(self, rules: Mapping[str, BoundRule]) -> None:
        needed = sorted({r for rule in rules.values() for r in rule.lineage.relations})
        missing = [r for r in needed if self._warehouse.columns(r) is None]
        if missing:
            profile = self._catalog.relations.profile
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="tags.missing-relation",
                title=f"Tags read {', '.join(missing)}, which does not exist yet",
                detail="build the customer profile first (marketloop customers refresh)" if profile in missing else "",
            )

    def import_values(self, name: str, values: Mapping[str, str], *, as_of: datetime | None = None) -> ImportResult:
        """Make `values` (cust_no → value; "true" for a yes / no tag) the values of a static or model tag."""
        tag = self.get(name)
        if tag.kind not in (TagKind.STATIC, TagKind.MODEL):
            raise invalid(
                "not-importable", f"{name} is a {tag.kind.value} tag", "values are imported into static or model tags"
            )
        rejected = self._warehouse.unknown_customers(list(values))
        kept = {cust_no: value for cust_no, value in values.items() if cust_no not in set(rejected)}
        if tag.values and tag.values != (TRUE,):
            wrong = sorted({v for v in kept.values() if v not in tag.values})
            if wrong:
                raise invalid("unknown-value", f"{name} does not take the value {wrong[0]!r}", ", ".join(tag.values))
        change = self._warehouse.replace(name, kept, as_of or self._clock.now())
        return ImportResult(tag=name, change=change, rejected=rejected)

    def assign(self, name: str, cust_no: str, value: str | None, *, at: datetime | None = None) -> bool:
        """Set (None: remove) one customer's value of a static tag (a journey's update step); whether it changed.

        The same value again changes nothing, so repeating an assignment is harmless."""
        tag = self.get(name)
        if tag.kind != TagKind.STATIC:
            raise invalid("not-static", f"{name} is a {tag.kind.value} tag", "only static tags are set one by one")
        if value is not None and tag.values and value not in tag.values:
            raise invalid("unknown-value", f"{name} does not take the value {value!r}", ", ".join(tag.values))
        if value is not None and self._warehouse.unknown_customers([cust_no]):
            raise invalid("unknown-customer", f"{cust_no!r} is not a customer", "static tags hold customers only")
        return self._warehouse.set_value(name, cust_no, value, at or self._clock.now())

    def set_realtime(self, name: str, cust_no: str, value: str | None, *, at: datetime | None = None) -> bool:
        """Set (None: remove) one customer's value of a real-time tag; the stream processor's write path."""
        tag = self.get(name)
        if tag.kind != TagKind.REALTIME:
            raise invalid("not-realtime", f"{name} is a {tag.kind.value} tag", "only real-time tags are set per event")
        return self._warehouse.set_value(name, cust_no, value, at or self._clock.now())

    def values_of(self, cust_no: str, *, as_of: datetime | None = None) -> builtins.list[TagValue]:
        """The customer's tag values now, or in force at `as_of` (from the history)."""
        if as_of is None:
            return self._warehouse.values_of(cust_no)
        return self._warehouse.values_as_of(cust_no, as_utc(as_of))

    def tag_as_of(self, name: str, at: datetime) -> dict[str, str]:
        """Every customer's value of `name` in force at `at` (point-in-time training)."""
        self.get(name)
        return self._warehouse.tag_as_of(name, as_utc(at))

    def coverage(self, name: str, *, limit: int = 30) -> builtins.list[TagStats]:
        """The statistics of the last `limit` refreshes of `name`, newest first."""
        self.get(name)
        return self._repository.stats(name, limit=limit)

    def last_stats(self) -> dict[str, TagStats]:
        return self._repository.last_stats()

    def strata(self, name: str, day: date) -> tuple[date | None, dict[str, int]]:
        """The snapshot of a stratification tag on or before `day`: its date and value → customers."""
        self.get(name)
        return self._warehouse.snapshot_as_of(name, day)


def _same(current: TagVersion, draft: TagDraft) -> bool:
    if current.retired or current.kind != draft.kind:
        return False
    rule = parse_rule(draft.definition).document() if draft.kind == TagKind.RULE else None
    return (current.title, current.category, current.description, current.business_line, current.snapshots) == (
        draft.title,
        draft.category,
        draft.description,
        draft.business_line,
        draft.snapshots,
    ) and current.definition == rule
