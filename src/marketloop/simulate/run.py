"""Run a simulation into a data directory's ports: bank tables, event log, loader, ground truth files.

`simulate` draws the network, the population and the ground truth, then
simulates customers in chunks of `CHUNK` (each chunk: bank rows through
`BankStore.append`, events appended to the log in large batches and loaded
by the loader), reporting progress after each, and finally writes
`ground_truth/`:

* `customers.parquet`: one row per customer, the latent traits (see `truth`);
* `identities.parquet`: every identifier of every customer (cust_no, kind, value, appid);
* `response_model.json`: the touch response model, its parameters and formulas;
* `run.json`: the plan (seed, customers, days, end), counts and status.

A data directory that already has customers is refused (`simulate.bank-exists`),
unless `force` is given and `run.json` shows the same plan: then the bank
rows are merged (idempotent: nothing changes but the ciphertexts, which are
re-encrypted), the ground truth is rewritten, and only the events the log
does not have yet are appended (resuming an interrupted run). A different
plan over an existing bank is always refused: use a new data directory.
"""

from __future__ import annotations

import json
import multiprocessing
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Protocol

import numpy as np
import polars as pl

from marketloop.core.bank import BRANCHES, CUSTOMERS, PRODUCTS, RELATIONSHIP_MANAGERS, TABLES_BY_NAME, TableSpec
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.bank import BankStore
from marketloop.ports.eventlog import EventLog
from marketloop.ports.state import Source, TrackingMode
from marketloop.security.crypto import FieldCipher
from marketloop.simulate import records, truth
from marketloop.simulate.chunk import ChunkJob, ChunkOutput, simulate_chunk
from marketloop.simulate.customers import customer_rows
from marketloop.simulate.identities import app_ids
from marketloop.simulate.network import build_network
from marketloop.simulate.population import generate
from marketloop.simulate.products import products_frame
from marketloop.simulate.streams import Window

CHUNK = 100_000
APPEND_BATCH = 250_000
SOURCE_NAME = "simulator"
TRUTH_DIR = "ground_truth"


class Sources(Protocol):
    """What the simulator needs of `collect.sources.SourceService`."""

    def list(self) -> list[Source]: ...

    def create(self, name: str, *, tracking_mode: TrackingMode = ...) -> tuple[Source, str]: ...


class Drain(Protocol):
    """What the simulator needs of the loader: load everything durable now."""

    def drain(self) -> int: ...


@dataclass(frozen=True, kw_only=True)
class Plan:
    customers: int
    days: int
    seed: int
    end: date
    chunk_size: int = CHUNK

    def __post_init__(self) -> None:
        if self.customers < 1 or self.days < 1 or self.chunk_size < 1:
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="simulate.invalid-plan",
                title="A simulation needs at least one customer and one day",
                detail=f"customers={self.customers}, days={self.days}",
            )

    def as_dict(self) -> dict[str, object]:
        return {
            "customers": self.customers,
            "days": self.days,
            "seed": self.seed,
            "end": self.end.isoformat(),
            "chunk_size": self.chunk_size,
        }


@dataclass(frozen=True, kw_only=True)
class Progress:
    """One progress report: `done` of `total` customers simulated, events so far, what is happening."""

    stage: str
    done: int
    total: int
    events: int


@dataclass(kw_only=True)
class Summary:
    plan: Plan
    rows: dict[str, int] = field(default_factory=dict)
    events: int = 0
    loaded: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0  # of `seconds`, spent by the loader
    ground_truth: str = ""

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "plan": self.plan.as_dict()}


@dataclass(frozen=True, kw_only=True)
class Target:
    """The ports and places a simulation writes to."""

    bank: BankStore
    log: EventLog
    loader: Drain
    sources: Sources
    cipher: FieldCipher
    data_dir: Path


def _ignore(_: Progress) -> None:
    return None


def _refuse(detail: str) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.CONFLICT,
        code="simulate.bank-exists",
        title="The data directory already has a bank",
        detail=detail + " Simulate into a new --data-dir.",
    )


def _resume_point(target: Target, plan: Plan, force: bool) -> int | None:
    """None for a fresh bank; else how many chunks' events the same plan already appended (with `force`)."""
    existing = target.bank.count(CUSTOMERS)
    if existing == 0:
        return None
    run_file = target.data_dir / TRUTH_DIR / "run.json"
    previous = json.loads(run_file.read_text()) if run_file.is_file() else None
    if previous is None:
        raise _refuse(f"It holds {existing} customers that were not simulated (no {TRUTH_DIR}/run.json).")
    if previous.get("plan") != plan.as_dict():
        raise _refuse(f"It holds a simulated bank of another plan: {previous.get('plan')}.")
    if not force:
        raise _refuse(f"It holds this simulation already ({existing} customers); --force re-applies it idempotently.")
    return int(previous.get("chunks_appended", 0))


def _source_id(sources: Sources) -> str:
    for source in sources.list():
        if source.name == SOURCE_NAME:
            return source.id
    source, _ = sources.create(SOURCE_NAME, tracking_mode=TrackingMode.ALLOW)
    return source.id


class _Writer:
    """Writes bank rows (append for a fresh bank, merge when re-applying) and counts them."""

    def __init__(self, bank: BankStore, *, merge: bool) -> None:
        self._bank = bank
        self._merge = merge
        self.rows: dict[str, int] = {}

    def write(self, table: TableSpec, rows: pl.DataFrame) -> None:
        if rows.is_empty():
            return
        if self._merge:
            self._bank.merge(table, rows)
        else:
            self._bank.append(table, rows)
        self.rows[table.name] = self.rows.get(table.name, 0) + rows.height


def _partitions(keys: pl.Series, partitions: int) -> np.ndarray:
    """The log partition of each event, keyed like `CollectService`: crc32(user_id or anonymous_id)."""
    if partitions == 1:
        return np.zeros(keys.len(), dtype=np.int64)
    unique = keys.unique()
    numbers = [zlib.crc32(key.encode()) % partitions for key in unique.to_list()]
    return keys.replace_strict(unique, numbers, return_dtype=pl.Int64).to_numpy()


async def _append_events(log: EventLog, output: ChunkOutput) -> None:
    partition = _partitions(output.partition_keys, log.partitions)
    for number in range(log.partitions):
        chosen = output.records.filter(pl.Series(partition == number)) if log.partitions > 1 else output.records
        for start in range(0, chosen.len(), APPEND_BATCH):
            await log.append(number, records.as_bytes(chosen.slice(start, APPEND_BATCH)))


def _write_run(directory: Path, plan: Plan, **state: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "run.json").write_text(json.dumps({"plan": plan.as_dict(), **state}, indent=2))


def _outputs(jobs: Iterator[ChunkJob], workers: int) -> Iterator[tuple[ChunkJob, ChunkOutput]]:
    """Chunk outputs in chunk order; with `workers` > 1 from a process pool, a few chunks ahead."""
    if workers <= 1:
        for job in jobs:
            yield job, simulate_chunk(job)
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending: deque[tuple[ChunkJob, Future[ChunkOutput]]] = deque()
        for job in jobs:
            pending.append((job, pool.submit(simulate_chunk, job)))
            if len(pending) > workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(kw_only=True)
class _Run:
    """The state of one simulation while it runs."""

    target: Target
    plan: Plan
    writer: _Writer
    summary: Summary
    truth_dir: Path
    chunks_appended: int
    load: bool
    progress: Callable[[Progress], None]
    identities: list[pl.DataFrame] = field(default_factory=list)
    load_seconds: float = 0.0

    async def store(self, job: ChunkJob, output: ChunkOutput) -> None:
        """Write one chunk: customers (encrypted here), the other tables, its events (unless already in the log)."""
        customers = customer_rows(job.population, output.aum, self.target.cipher)
        self.writer.write(CUSTOMERS, customers)
        for name, rows in output.tables.items():
            self.writer.write(TABLES_BY_NAME[name], rows)
        self.summary.events += output.records.len()
        if job.chunk >= self.chunks_appended and output.records.len():
            await _append_events(self.target.log, output)
            self.chunks_appended = job.chunk + 1
            _write_run(self.truth_dir, self.plan, status="running", chunks_appended=self.chunks_appended)
        if self.load:
            done = min(job.chunk * self.plan.chunk_size, self.plan.customers)
            self.progress(
                Progress(stage="loading events", done=done, total=self.plan.customers, events=self.summary.events)
            )
            loading = time.perf_counter()
            self.summary.loaded += self.target.loader.drain()
            self.load_seconds += time.perf_counter() - loading
        phones = customers.select(
            "cust_no", kind=pl.lit("phone_hash"), value="phone_hash", appid=pl.lit(None, pl.String)
        )
        self.identities += [output.identities, phones]


def _jobs(
    plan: Plan, population: pl.DataFrame, latent: pl.DataFrame, window: Window, source_id: str
) -> Iterator[ChunkJob]:
    apps = app_ids(plan.seed)
    prefix = records.message_id_prefix(plan.seed)
    for chunk, start in enumerate(range(0, plan.customers, plan.chunk_size)):
        yield ChunkJob(
            seed=plan.seed,
            chunk=chunk,
            population=population.slice(start, plan.chunk_size),
            truth=latent.slice(start, plan.chunk_size),
            window=window,
            apps=apps,
            source_id=source_id,
            message_prefix=prefix,
        )


async def simulate(
    target: Target,
    plan: Plan,
    *,
    force: bool = False,
    workers: int = 1,
    load: bool = True,
    progress: Callable[[Progress], None] = _ignore,
) -> Summary:
    """Simulate `plan` into `target`; see the module docstring.

    `workers` > 1 simulates chunks in that many processes (same output). With `load`, the loader
    drains the log after each chunk; without, the events wait in the log for a running loader.
    """
    started = time.perf_counter()
    resume = _resume_point(target, plan, force)
    run = _Run(
        target=target,
        plan=plan,
        writer=_Writer(target.bank, merge=resume is not None),
        summary=Summary(plan=plan),
        truth_dir=target.data_dir / TRUTH_DIR,
        chunks_appended=resume or 0,
        load=load,
        progress=progress,
    )
    _write_run(run.truth_dir, plan, status="running", chunks_appended=run.chunks_appended)
    source_id = _source_id(target.sources)
    window = Window(end=plan.end, days=plan.days)
    progress(Progress(stage="population", done=0, total=plan.customers, events=0))
    network = build_network(plan.seed, plan.customers)
    for spec, rows in (
        (BRANCHES, network.branches),
        (RELATIONSHIP_MANAGERS, network.managers),
        (PRODUCTS, products_frame()),
    ):
        run.writer.write(spec, rows)
    population = generate(plan.seed, plan.customers, window, network)
    latent = truth.latent(plan.seed, population, window)
    progress(Progress(stage="simulating", done=0, total=plan.customers, events=0))
    for job, output in _outputs(_jobs(plan, population, latent, window, source_id), workers):
        await run.store(job, output)
        done = min((job.chunk + 1) * plan.chunk_size, plan.customers)
        progress(Progress(stage="customers", done=done, total=plan.customers, events=run.summary.events))
    progress(Progress(stage="ground truth", done=plan.customers, total=plan.customers, events=run.summary.events))
    _write_truth(run.truth_dir, plan, population, latent, pl.concat(run.identities))
    summary = run.summary
    summary.rows = run.writer.rows
    summary.seconds = round(time.perf_counter() - started, 2)
    summary.load_seconds = round(run.load_seconds, 2)
    summary.ground_truth = str(run.truth_dir)
    outcome = {k: v for k, v in summary.as_dict().items() if k != "plan"}
    _write_run(run.truth_dir, plan, status="complete", chunks_appended=run.chunks_appended, **outcome)
    return summary


TRUTH_COLUMNS = (
    "cust_no",
    "user_id",
    "wealth_propensity",
    "p_convert_untouched",
    "uplift",
    "persuadability",
    "sleeping_dog",
    "churn_hazard",
    "churn_date",
    "preferred_channel",
    "best_contact_hour",
    "engagement",
    "reinvest_probability",
    "app_user",
    "wechat_follower",
    "mini_program_user",
    "h5_visitor",
    "has_rm",
    "has_email",
    "phone_shared_with",
)


def _write_truth(
    directory: Path, plan: Plan, population: pl.DataFrame, latent: pl.DataFrame, ids: pl.DataFrame
) -> None:
    shared = population.select(
        phone_shared_with=pl.when(pl.col("phone_shared_with").is_not_null()).then(
            population["cust_no"].gather(population["phone_shared_with"].fill_null(0))
        )
    )
    frame = pl.concat([latent, population.select("user_id"), shared], how="horizontal").with_columns(
        churn_date=pl.col("churn_day").cast(pl.Int32).cast(pl.Date)
    )
    frame.select(TRUTH_COLUMNS).write_parquet(directory / "customers.parquet")
    ids.write_parquet(directory / "identities.parquet")
    (directory / "response_model.json").write_text(truth.ResponseModel().to_json(seed=plan.seed))
