"""OneID lookup latency at a million customers, against a bare dict lookup in the same run.

What it does:

1. builds an identity graph of N customers (default 1,000,000) with 4
   identifiers each - cust_no, user_id, phone (keyed hash, as stored) and an
   SDK anonymous id - by linking each customer's identifiers through the
   `IdentityService` in import-sized batches (normalising and hashing
   included; its store discards writes: this measures the graph);
2. times single lookups identifier -> OneID of randomly chosen identifiers
   (10 % unknown ones): `IdentityService.resolve` on ready identifiers, and
   `identifier(type, raw)` + `resolve` from a raw value (normalise, and
   HMAC for the phone) - each call timed on its own with `perf_counter_ns`;
3. times the same keys looked up in a bare `dict` (the raw baseline), the
   same way, so the timer's own cost is in both;
4. times `attribute()`, the loader's path, on a batch of track events of
   known customers, then on one where every event brings a new anonymous
   id, against decoding the same records with the same decoder.

Prints one JSON line. The target is p99 <= 1 ms for a lookup at 1M customers.
`--quick` runs 50,000 customers.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from marketloop.core.events import Event
from marketloop.core.identities import IdentityChanges, IdentitySnapshot
from marketloop.identity.extract import decoder
from marketloop.identity.service import IdentityService
from marketloop.security.crypto import FieldCipher, FieldKeys

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TARGET_P99_US = 1000.0


class DiscardingStore:
    """An `IdentityStore` that keeps nothing: the benchmark measures the in-memory graph."""

    def load(self) -> IdentitySnapshot:
        return IdentitySnapshot()

    def persist(self, changes: IdentityChanges) -> int:
        return 0

    def history(self, one_ids: Sequence[str], *, limit: int) -> list[Any]:
        return []

    def conflicts(self, one_ids: Sequence[str] | None = None, *, limit: int) -> list[Any]:
        return []


def phone_of(n: int) -> str:
    return f"138{n:08d}"


def raw_identifiers(n: int) -> list[tuple[str, str]]:
    return [("cust_no", f"C{n:09d}"), ("user_id", f"U{n:09d}"), ("phone", phone_of(n)), ("anonymous_id", f"a-{n:x}")]


def build(service: IdentityService, customers: int, chunk: int = 100_000) -> float:
    """Links every customer's identifiers as an import would: normalised, hashed, in batches."""
    started = time.perf_counter()
    for first in range(0, customers, chunk):
        batch = [
            [service.identifier(t, raw) for t, raw in raw_identifiers(n)]
            for n in range(first, min(first + chunk, customers))
        ]
        service.link_many(batch, reason="import", source="bench")
    return time.perf_counter() - started


def timed(call: Callable[[Any], object], arguments: Sequence[Any]) -> list[float]:
    """Each call's duration in microseconds."""
    clock = time.perf_counter_ns
    durations = []
    for argument in arguments:
        start = clock()
        call(argument)
        durations.append((clock() - start) / 1000)
    return durations


def percentiles(durations: list[float]) -> dict[str, float]:
    ordered = sorted(durations)

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 3)

    return {"p50": at(0.50), "p99": at(0.99), "p999": at(0.999), "max": round(ordered[-1], 3)}


def sample(service: IdentityService, customers: int, lookups: int, rng: random.Random) -> list[tuple[str, str]]:
    chosen = []
    for _ in range(lookups):
        n = rng.randrange(customers * 10 // 9)  # about 10 % are unknown customers
        chosen.append(rng.choice(raw_identifiers(n)))
    return chosen


def lookups(service: IdentityService, chosen: list[tuple[str, str]]) -> dict[str, Any]:
    identifiers = [service.identifier(t, raw) for t, raw in chosen]
    baseline = {}
    for identifier in identifiers:
        one_id = service.resolve(identifier)
        if one_id is not None:
            baseline[identifier.key] = one_id
    keys = [i.key for i in identifiers]
    for _ in range(3):  # warm up caches, then measure each
        timed(service.resolve, identifiers[:10_000])
        timed(baseline.get, keys[:10_000])
    graph = percentiles(timed(service.resolve, identifiers))
    from_raw = percentiles(timed(lambda tr: service.resolve(service.identifier(*tr)), chosen))
    bare = percentiles(timed(baseline.get, keys))
    return {"resolve_us": graph, "resolve_from_raw_us": from_raw, "baseline_dict_us": bare}


def track_records(customers: int, events: int, rng: random.Random, *, new_sessions: bool) -> list[bytes]:
    """Track events of known customers; with `new_sessions`, each from an anonymous id never seen before."""
    records = []
    for m in range(events):
        n = rng.randrange(customers)
        event = Event(
            message_id=f"{'new' if new_sessions else 'known'}-{m}",
            type="track",
            source_id="bench",
            received_at=T0 + timedelta(seconds=m),
            timestamp=T0,
            event="fund_page_view",
            user_id=f"U{n:09d}",
            anonymous_id=f"s-{m:x}" if new_sessions else f"a-{n:x}",
            properties={"fund_code": "000001", "page": "detail", "amount": 1000},
            context={"library": {"name": "analytics-ios", "version": "4.1"}, "locale": "zh-CN"},
        )
        records.append(msgspec.json.encode(event))
    return records


def events_per_second(run: Callable[[], object], count: int) -> int:
    started = time.perf_counter()
    run()
    return round(count / (time.perf_counter() - started))


def attribution(service: IdentityService, customers: int, events: int, rng: random.Random) -> dict[str, int]:
    """The loader's path: known identifiers (the usual case), and a new anonymous id in every event (the worst)."""
    known = track_records(customers, events, rng, new_sessions=False)
    fresh = track_records(customers, events, rng, new_sessions=True)

    def attribute(records: list[bytes]) -> None:
        with service.attribute(records):
            pass

    return {
        "attribute_known_ids_events_per_second": events_per_second(lambda: attribute(known), events),
        "attribute_new_ids_events_per_second": events_per_second(lambda: attribute(fresh), events),
        "baseline_decode_events_per_second": events_per_second(lambda: [decoder.decode(r) for r in known], events),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="50,000 customers, 50,000 lookups, 20,000 events")
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.lookups, args.events = 50_000, 50_000, 20_000
    rng = random.Random(20260101)
    service = IdentityService(DiscardingStore(), FieldCipher(FieldKeys.generate()), _Clock())
    build_seconds = build(service, args.customers)
    result: dict[str, Any] = {
        "benchmark": "identity_lookup",
        "customers": args.customers,
        "identifiers": args.customers * 4,
        "build_seconds": round(build_seconds, 2),
        "links_per_second": round(args.customers / build_seconds),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "lookups": args.lookups,
    }
    result |= lookups(service, sample(service, args.customers, args.lookups, rng))
    result |= attribution(service, args.customers, args.events, rng)
    result["ratio_p99_vs_dict"] = round(result["resolve_us"]["p99"] / result["baseline_dict_us"]["p99"], 2)
    result["target_p99_us"] = TARGET_P99_US
    result["ok"] = max(result["resolve_us"]["p99"], result["resolve_from_raw_us"]["p99"]) <= TARGET_P99_US
    sys.stdout.write(json.dumps(result) + "\n")


class _Clock:
    def now(self) -> datetime:
        return T0

    def monotonic(self) -> float:
        return time.monotonic()


if __name__ == "__main__":
    main()
