"""Refreshing rule tags: incremental, in dependency order, set-based, with statistics per tag and run.

What "inputs changed" means: a rule tag is recomputed when any of these
differs from what its last refresh recorded (`TagStats.inputs`):

- `definition`: its version and a fingerprint of its resolved meaning (so a
  change to a segment it refers to counts, though the tag's text did not);
- `relation:NAME`: the data version of each relation its lineage reads
  (`TagWarehouse.versions`: row count and last load sequence of the events,
  a content hash of bank tables and the built profile);
- `tag:NAME`: a hash of the current values of each tag it reads (those are
  refreshed first, so a dependent sees this run's values);
- `day`: the as_of date, only for time-dependent tags (relative dates,
  windows, holdings on as_of) — tags are daily facts, so a second refresh on
  the same day with unchanged data skips them.

`full` recomputes every tag; `only` restricts the run to the named tags and
recomputes them whatever their inputs.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from marketloop.ports.clock import Clock
from marketloop.ports.tags import Change, Snapshots, TagQuery, TagRun, TagStats, TagVersion, TagWarehouse
from marketloop.segments.catalog import Catalog
from marketloop.tags.compile import tag_query
from marketloop.tags.definitions import BoundRule, invalid

BATCH = 10  # tags computed and written per warehouse call (and per progress step)

# (done, total, what is being done)
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, kw_only=True)
class RefreshReport:
    run: TagRun
    stats: list[TagStats]
    snapshots: dict[str, int]  # tag → rows of the snapshot written in this run


def dependency_levels(reads: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tags in levels: each level reads only tags of earlier levels. Raises on a cycle, naming it."""
    remaining = {name: {t for t in deps if t in reads} for name, deps in reads.items()}
    levels: list[list[str]] = []
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if not deps)
        if not ready:
            raise invalid("dependency-cycle", "Tags read each other in a cycle", " → ".join(_cycle(remaining)))
        levels.append(ready)
        remaining = {name: deps - set(ready) for name, deps in remaining.items() if name not in ready}
    return levels


def _cycle(graph: Mapping[str, set[str]]) -> list[str]:
    path: list[str] = [min(graph)]
    while True:
        following = min(graph[path[-1]])
        if following in path:
            return [*path[path.index(following) :], following]
        path.append(following)


class Refresher:
    """One refresh run over the given rule tags."""

    def __init__(self, warehouse: TagWarehouse, catalog: Catalog, clock: Clock) -> None:
        self._warehouse = warehouse
        self._catalog = catalog
        self._clock = clock

    def run(
        self,
        tags: Mapping[str, TagVersion],
        rules: Mapping[str, BoundRule],
        last: Mapping[str, TagStats],
        as_of: datetime,
        *,
        full: bool = False,
        only: set[str] | None = None,
        progress: Progress | None = None,
    ) -> RefreshReport:
        started = self._clock.now()
        report = progress or (lambda _done, _total, _what: None)
        relations = sorted({r for rule in rules.values() for r in rule.lineage.relations} - {self._relation_of_tags})
        versions = self._warehouse.versions(relations)
        scope = [name for name in rules if only is None or name in only]
        stats: list[TagStats] = []
        skipped: list[str] = []
        done = 0
        report(0, len(scope), "checking inputs")
        for level in dependency_levels({name: rules[name].lineage.tags for name in scope}):
            reads = sorted({t for name in level for t in rules[name].lineage.tags})
            read = self._warehouse.tag_versions(reads)
            inputs = {name: _inputs(tags[name], rules[name], versions, read, as_of) for name in level}
            stale = [n for n in level if full or only is not None or last.get(n) is None or last[n].inputs != inputs[n]]
            skipped += [n for n in level if n not in stale]
            done += len(level) - len(stale)
            for start in range(0, len(stale), BATCH):
                batch = stale[start : start + BATCH]
                report(done, len(scope), ", ".join(batch))
                stats += self._compute(batch, tags, rules, inputs, as_of)
                done += len(batch)
        report(done, len(scope), "snapshots")
        snapshots = self._snapshots(tags, as_of, only)
        run = TagRun(
            run_id="run_" + secrets.token_hex(6),
            as_of=as_of,
            started_at=started,
            finished_at=self._clock.now(),
            full=full,
            refreshed=tuple(s.tag for s in stats),
            skipped=tuple(skipped),
        )
        report(len(scope), len(scope), "done")
        return RefreshReport(run=run, stats=stats, snapshots=snapshots)

    @property
    def _relation_of_tags(self) -> str:
        return self._catalog.relations.tags

    def _compute(
        self,
        batch: Sequence[str],
        tags: Mapping[str, TagVersion],
        rules: Mapping[str, BoundRule],
        inputs: Mapping[str, dict[str, str]],
        as_of: datetime,
    ) -> list[TagStats]:
        queries: list[TagQuery] = [tag_query(rules[n], as_of, self._warehouse.dialect, self._catalog) for n in batch]
        started = self._clock.monotonic()
        changes = self._warehouse.apply(queries, as_of)
        seconds = round((self._clock.monotonic() - started) / max(len(batch), 1), 4)
        return [_stats(change, tags[change.tag], as_of, inputs[change.tag], seconds) for change in changes]

    def _snapshots(self, tags: Mapping[str, TagVersion], as_of: datetime, only: set[str] | None) -> dict[str, int]:
        day = as_of.date()
        written: dict[str, int] = {}
        for name, tag in tags.items():
            if tag.snapshots == Snapshots.NONE or tag.retired or (only is not None and name not in only):
                continue
            if tag.snapshots == Snapshots.WEEKLY and day.weekday() != 0:
                taken, _ = self._warehouse.snapshot_as_of(name, day)
                if taken is not None and day - taken < timedelta(days=7):
                    continue
            written[name] = self._warehouse.snapshot(name, day)
        return written


def _inputs(
    tag: TagVersion, rule: BoundRule, versions: Mapping[str, str], read: Mapping[str, str], as_of: datetime
) -> dict[str, str]:
    found = {"definition": f"{tag.version}:{rule.fingerprint}"}
    found |= {f"relation:{r}": versions[r] for r in rule.lineage.relations if r in versions}
    found |= {f"tag:{t}": read[t] for t in rule.lineage.tags}
    if rule.lineage.time_dependent:
        found["day"] = as_of.date().isoformat()
    return found


def _stats(change: Change, tag: TagVersion, as_of: datetime, inputs: dict[str, str], seconds: float) -> TagStats:
    return TagStats(
        tag=change.tag,
        version=tag.version,
        as_of=as_of,
        population=change.population,
        customers=change.customers,
        changed=change.changed,
        distribution=change.distribution,
        inputs=inputs,
        seconds=seconds,
    )
