"""Wiring: which adapter serves which port, and the lifecycle of the whole.

This is the only module that imports adapters. Engines receive ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

import polars as pl
import sqlalchemy as sa

from marketloop.access.service import AccessService
from marketloop.access.throttle import ThrottleRules
from marketloop.adapters.clock import SystemClock
from marketloop.adapters.duckdb_analytics import DuckDBAnalyticsWarehouse
from marketloop.adapters.duckdb_attributes import DuckDBProfileAttributes
from marketloop.adapters.duckdb_bank import DuckDBBankStore
from marketloop.adapters.duckdb_branches import DuckDBBranchDirectory
from marketloop.adapters.duckdb_customer_facts import DuckDBCustomerFacts
from marketloop.adapters.duckdb_experiments import DuckDBEventConversions, DuckDBExperimentWarehouse
from marketloop.adapters.duckdb_identity import DuckDBIdentityStore
from marketloop.adapters.duckdb_profiles import DuckDBProfileStore
from marketloop.adapters.duckdb_segment_monitoring import DuckDBMonitoringWarehouse
from marketloop.adapters.duckdb_segments import DuckDBSegmentWarehouse
from marketloop.adapters.duckdb_tags import DuckDBTagWarehouse
from marketloop.adapters.duckdb_warehouse import DuckDBWarehouse
from marketloop.adapters.filelog import FileLog
from marketloop.adapters.sql.access import SqlAccessStore
from marketloop.adapters.sql.analytics import SqlAnalyticsRepository
from marketloop.adapters.sql.approvals import SqlApprovalStore
from marketloop.adapters.sql.audit import SqlAuditStore
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.experiments import SqlExperimentRepository
from marketloop.adapters.sql.journey_experiments import SqlJourneySplits
from marketloop.adapters.sql.journeys import SqlJourneyStore
from marketloop.adapters.sql.realtime import SqlStreamStore, SqlTriggerRepository
from marketloop.adapters.sql.segment_monitoring import SqlSegmentMonitorRepository
from marketloop.adapters.sql.segments import SqlSegmentRepository
from marketloop.adapters.sql.sources import SqlSourceRepository
from marketloop.adapters.sql.tags import SqlTagRepository
from marketloop.adapters.sql.tracking import SqlTrackingPlanRepository
from marketloop.analytics.alerts import AlertService
from marketloop.analytics.library import AnalysisLibrary
from marketloop.analytics.service import AnalyticsService
from marketloop.app import keys
from marketloop.app.alerts import alert_service
from marketloop.app.channels import Channels, open_channels
from marketloop.app.dispatch import DispatcherProcess
from marketloop.app.settings import Settings
from marketloop.collect.loader import Loader
from marketloop.collect.service import CollectService, PlanCheck
from marketloop.collect.sources import SourceService
from marketloop.collect.tracking_plan import TrackingPlanService
from marketloop.experiments.service import ExperimentService
from marketloop.identity.service import IdentityService
from marketloop.journeys.definitions import JourneyDefinitions
from marketloop.journeys.facts import profile_facts
from marketloop.journeys.keyed import Repartitioner
from marketloop.journeys.membership import LookupFacts, SegmentMembership
from marketloop.journeys.outbox import OutboxDispatcher
from marketloop.journeys.processor import CONSUMER as STREAM_CONSUMER
from marketloop.journeys.processor import StreamProcessor
from marketloop.journeys.runner import JourneyEvents, JourneyRunner
from marketloop.journeys.runtime import JourneyRuntime
from marketloop.journeys.segment_events import SegmentEvents, skipping_broken
from marketloop.journeys.service import TriggerService
from marketloop.journeys.split_experiments import SplitExperiments
from marketloop.journeys.walk import Walker
from marketloop.ports.access import BranchDirectory
from marketloop.ports.bank import BankStore
from marketloop.ports.clock import Clock
from marketloop.profiles.imports import CustomersHook, ImportService
from marketloop.profiles.lookup import EventIdentityLookup, OneIdLookup
from marketloop.profiles.service import ProfileService
from marketloop.security.audit import AuditLog
from marketloop.security.crypto import FieldCipher
from marketloop.security.ratelimit import RateLimiter
from marketloop.segments.catalog import ONE_ID_CATALOG
from marketloop.segments.fixed import FixedSegmentService
from marketloop.segments.lookalike import LookalikeService
from marketloop.segments.service import SegmentService
from marketloop.segments.sizes import SegmentSizes
from marketloop.tags.service import TagService


def open_sources(settings: Settings) -> tuple[SourceService, sa.Engine]:
    """Only the operational store and the source service: usable while `marketloop serve` holds the log.

    The server re-reads a source within its key-cache time, so a key disabled here is refused there.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.state_url)
    upgrade(engine)
    clock = SystemClock()
    return SourceService(SqlSourceRepository(engine), clock, audit=AuditLog(SqlAuditStore(engine), clock)), engine


def open_triggers(settings: Settings) -> tuple[TriggerService, sa.Engine]:
    """The trigger service on the operational store alone: usable while `marketloop serve` holds the log.

    It cannot fire API triggers (that appends to the log: use the HTTP API); the server's
    processor picks up saved triggers at its next batch.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.state_url)
    upgrade(engine)
    clock = SystemClock()
    audit = AuditLog(SqlAuditStore(engine), clock)
    return TriggerService(SqlTriggerRepository(engine), clock, store=SqlStreamStore(engine), audit=audit), engine


def access_service(
    settings: Settings, engine: sa.Engine, clock: Clock, audit: AuditLog, branches: BranchDirectory | None = None
) -> AccessService:
    """Users, roles, tokens and sessions on the operational store (`branches` scopes branch users' data)."""
    rules = settings.access
    throttle = ThrottleRules(
        max_failures_per_user=rules.login_max_failures_per_user,
        max_failures_per_client=rules.login_max_failures_per_client,
        window_seconds=rules.login_window_seconds,
        lockout_seconds=rules.login_lockout_seconds,
    )
    return AccessService(
        SqlAccessStore(engine),
        clock,
        audit=audit,
        branches=branches,
        session_ttl=timedelta(hours=rules.session_hours),
        throttle=throttle,
        approvals=SqlApprovalStore(engine),
        token_limiter=RateLimiter(
            settings.rate_limits.token_per_second, settings.rate_limits.token_burst, clock.monotonic
        ),
    )


def journey_definitions(engine: sa.Engine, clock: Clock, audit: AuditLog) -> JourneyDefinitions:
    """Journeys on the operational store; publishing registers each split step as an experiment."""
    splits = SplitExperiments(SqlExperimentRepository(engine), SqlJourneySplits(engine), clock)
    return JourneyDefinitions(SqlJourneyStore(engine), clock, audit=audit, splits=splits)


@dataclass(kw_only=True)
class Container:
    settings: Settings
    clock: Clock
    engine: sa.Engine
    dispatcher_process: DispatcherProcess | None = None  # set by `marketloop serve` (see app.dispatch)
    log: FileLog
    keyed_log: FileLog
    warehouse: DuckDBWarehouse
    sources: SourceService
    plan: PlanCheck
    tracking: TrackingPlanService
    collect: CollectService
    loader: Loader
    cipher: FieldCipher
    bank: BankStore
    audit: AuditLog
    access: AccessService
    identity: IdentityService
    triggers: TriggerService
    processor: StreamProcessor
    segments: SegmentService
    tags: TagService
    attributes: DuckDBProfileAttributes  # custom profile fields, written by journeys' update steps
    profiles: ProfileService
    imports: ImportService

    @classmethod
    def open(cls, settings: Settings) -> Container:
        """Open every store under `settings.data_dir` (creating it) and wire the services."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        clock = SystemClock()
        engine = create_engine(settings.state_url)
        upgrade(engine)
        log = FileLog(
            settings.data_dir / "log",
            partitions=settings.eventlog.partitions,
            segment_bytes=settings.eventlog.segment_bytes,
        )
        try:
            # the stream processor's input: the collection log re-partitioned by OneID (journeys.keyed)
            keyed_log = FileLog(
                settings.data_dir / "keyed",
                partitions=settings.eventlog.partitions,
                segment_bytes=settings.eventlog.segment_bytes,
            )
        except BaseException:
            log.close_sync()
            raise
        try:
            warehouse = DuckDBWarehouse(
                settings.data_dir / "warehouse" / "events.duckdb",
                dedupe_window_rows=settings.warehouse.dedupe_window_rows,
                threads=settings.warehouse.threads,
            )
        except BaseException:
            log.close_sync()
            keyed_log.close_sync()
            raise
        audit = AuditLog(SqlAuditStore(engine), clock)
        sources = SourceService(SqlSourceRepository(engine), clock, audit=audit)
        tracking = TrackingPlanService(SqlTrackingPlanRepository(engine), warehouse, sources, clock, audit=audit)
        cipher = FieldCipher(keys.load_or_create(settings.key_file))
        identity = IdentityService(
            DuckDBIdentityStore(warehouse.cursor, warehouse.write_lock), cipher, clock, settings.identity.types()
        )
        loader = Loader(
            log,
            warehouse,
            clock,
            min_batch=settings.loader.min_batch,
            max_batch=settings.loader.max_batch,
            max_wait=settings.loader.max_wait_seconds,
            resolver=identity,
        )
        profile_store = DuckDBProfileStore(warehouse.cursor, warehouse.write_lock)
        lookup = OneIdLookup(identity, fallback=EventIdentityLookup(profile_store))
        tag_warehouse = DuckDBTagWarehouse(warehouse.cursor, warehouse.write_lock)
        attributes = DuckDBProfileAttributes(warehouse.cursor, warehouse.write_lock)
        tags = TagService(SqlTagRepository(engine), tag_warehouse, clock, segments=SqlSegmentRepository(engine))
        bank = DuckDBBankStore(warehouse.cursor, warehouse.write_lock)
        stream_store, trigger_repository = SqlStreamStore(engine), SqlTriggerRepository(engine)
        segments = SegmentService(
            SqlSegmentRepository(engine),
            DuckDBSegmentWarehouse(warehouse.cursor, warehouse.write_lock),
            clock,
            tags=tags.names,
            catalog=ONE_ID_CATALOG,
        )
        keyer = Repartitioner(
            log,
            keyed_log,
            stream_store,
            clock,
            resolver=identity,
            max_batch=settings.stream.max_batch,
            legacy_consumer=STREAM_CONSUMER,
        )
        processor = StreamProcessor(
            log,
            stream_store,
            trigger_repository,
            clock,
            keyer=keyer,
            segment_events=_segment_events(settings, segments, warehouse, log, clock),
            max_batch=settings.stream.max_batch,
            timer_batch=settings.stream.timer_batch,
            poll_seconds=settings.stream.poll_seconds,
        )
        return cls(
            imports=ImportService(bank, cipher, on_customers=_link_imported(identity)),
            profiles=ProfileService(
                profile_store, cipher, clock, identities=lookup, tags=tag_warehouse, attributes=attributes
            ),
            attributes=attributes,
            tags=tags,
            cipher=cipher,
            identity=identity,
            triggers=TriggerService(trigger_repository, clock, events=log, store=stream_store, audit=audit),
            processor=processor,
            bank=bank,
            segments=segments,
            audit=audit,
            settings=settings,
            clock=clock,
            engine=engine,
            log=log,
            keyed_log=keyed_log,
            warehouse=warehouse,
            sources=sources,
            plan=tracking,
            tracking=tracking,
            collect=CollectService(
                log,
                sources,
                tracking,
                clock,
                limiter=RateLimiter(
                    settings.rate_limits.write_key_per_second, settings.rate_limits.write_key_burst, clock.monotonic
                ),
            ),
            loader=loader,
            access=access_service(
                settings, engine, clock, audit, DuckDBBranchDirectory(warehouse.cursor, warehouse.write_lock)
            ),
        )

    @cached_property
    def channels(self) -> Channels:
        """Channels and contact policy (触达渠道与触达策略) on the operational store."""
        return open_channels(self.settings, self.engine, self.clock, self.audit)

    @cached_property
    def experiments(self) -> ExperimentService:
        """Experiments (实验) and campaign effect: definitions in the operational store, outcomes in the warehouse."""
        return ExperimentService(
            SqlExperimentRepository(self.engine),
            DuckDBExperimentWarehouse(self.warehouse.cursor, self.warehouse.write_lock),
            self.clock,
            channel_costs=self.settings.experiments.channel_costs,
            event_conversions=DuckDBEventConversions(self.warehouse.cursor, self.warehouse.write_lock),
            journey_splits=SqlJourneySplits(self.engine),
        )

    @cached_property
    def journeys(self) -> JourneyDefinitions:
        """Journeys (旅程): drafts, immutable published versions, pause / resume, per-step counts."""
        return journey_definitions(self.engine, self.clock, self.audit)

    @cached_property
    def journey_runner(self) -> JourneyRunner:
        """The journey runtime's loop: trigger fires in, touches out through the channels' send service."""
        walker = Walker(profile_facts(self.profiles))
        runtime = JourneyRuntime(self.journeys, walker, self.clock, audience=self.segments.members)
        events = JourneyEvents(runtime, self.log, SqlStreamStore(self.engine), resolver=self.identity)
        sends = self.channels.sends
        dispatcher = OutboxDispatcher(
            self.journeys.store, sends.send_many, sends.send, self.clock, tags=self.tags, attributes=self.attributes
        )
        runner = JourneyRunner(runtime, events, dispatcher, poll_seconds=self.settings.stream.poll_seconds)
        self.processor.on_fires(runner.wake)
        return runner

    @cached_property
    def _segment_monitors(self) -> SqlSegmentMonitorRepository:
        return SqlSegmentMonitorRepository(self.engine)

    @cached_property
    def _monitoring_warehouse(self) -> DuckDBMonitoringWarehouse:
        return DuckDBMonitoringWarehouse(self.warehouse.cursor, self.warehouse.write_lock)

    @cached_property
    def fixed_segments(self) -> FixedSegmentService:
        """Fixed segments (固化客群): frozen members and their stages over time."""
        return FixedSegmentService(self.segments, self._segment_monitors, self._monitoring_warehouse, self.clock)

    @cached_property
    def segment_sizes(self) -> SegmentSizes:
        return SegmentSizes(self.segments, self._segment_monitors)

    @cached_property
    def lookalikes(self) -> LookalikeService:
        return LookalikeService(self.segments, self._segment_monitors, self._monitoring_warehouse, self.clock)

    @cached_property
    def analytics(self) -> AnalyticsService:
        """Analyses (M5) over the warehouse, restricted by segments, drilled down through the profiles."""
        return AnalyticsService(
            DuckDBAnalyticsWarehouse(self.warehouse.cursor), self.segments, self.profiles, self.clock
        )

    @cached_property
    def alerts(self) -> AlertService:
        """Metric alerts (M5): to webhooks, and e-mail through the e-mail channel's SMTP server."""
        return alert_service(self.settings, self.analytics, self.clock, self.engine)

    @cached_property
    def analyses(self) -> AnalysisLibrary:
        """Saved analyses (M5)."""
        return AnalysisLibrary(self.analytics, SqlAnalyticsRepository(self.engine), self.clock)

    def start(self) -> None:
        """Start background consumers (the loader, the stream processor, the journey runner and, with
        `[stream] dispatcher = "process"` under `marketloop serve`, the dispatcher process)."""
        self.loader.start()
        self.processor.start()
        mode = self.settings.stream.dispatcher
        if mode == "process" and self.dispatcher_process is not None:
            self.dispatcher_process.start()
        elsewhere = mode == "off" or (mode == "process" and self.dispatcher_process is not None)
        self.journey_runner.start(sends_elsewhere=elsewhere)

    async def aclose(self) -> None:
        """Drain: finish pending appends, load and process what is durable, release every store."""
        await self.log.close()
        self.loader.stop()
        self.processor.stop()
        self.keyed_log.close_sync()
        if "journey_runner" in self.__dict__:  # started (cached_property): stop, then run what is due
            self.journey_runner.stop()
        if self.dispatcher_process is not None:
            self.dispatcher_process.stop()
        self._close_channels()
        self.warehouse.close()
        self.engine.dispose()

    def close(self) -> None:
        """Release every store without a running event loop (CLI commands)."""
        self.loader.drain()
        self.log.close_sync()
        self.keyed_log.close_sync()
        self._close_channels()
        self.warehouse.close()
        self.engine.dispose()

    def _close_channels(self) -> None:
        if "channels" in self.__dict__:  # opened (cached_property)
            self.channels.close()


def _segment_events(
    settings: Settings, segments: SegmentService, warehouse: DuckDBWarehouse, log: FileLog, clock: Clock
) -> SegmentEvents:
    """Real-time segments (segment triggers' and `[stream] realtime_segments`) as events on the log."""
    configured = frozenset(settings.stream.realtime_segments)
    membership = SegmentMembership(
        skipping_broken(segments.membership),
        LookupFacts(DuckDBCustomerFacts(warehouse.cursor, clock.monotonic)),
        clock,
        refresh_seconds=60.0,
    )
    return SegmentEvents(
        membership, log, clock, realtime=lambda: configured, name_of=lambda segment_id: segments.get(segment_id).name
    )


def _link_imported(identity: IdentityService) -> CustomersHook:
    """After a customers import, OneID links each customer's number, phone, ID number and email."""

    def link(customers: pl.DataFrame) -> None:
        identity.link_customers(customers.iter_rows(named=True), source="import:customers")

    return link
