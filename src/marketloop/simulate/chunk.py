"""One chunk of customers, simulated end to end: bank rows, encoded event records, identifiers' ground truth.

Chunks are independent: each part draws from its own stream for the chunk
(`streams.stream(seed, part, chunk)`) and its events are numbered within
the chunk, so a chunk's output depends only on the seed, the plan and the
chunk number; chunks can run in other processes (`run` uses a process
pool) and give the same bytes. Everything but the customers' personal
fields is done here: encryption needs the data directory's keys, which stay
in the main process.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from marketloop.simulate import activity, behaviour, holdings, identities, payroll, records, sessions, transactions
from marketloop.simulate.customers import end_aum, rm_assignment_rows
from marketloop.simulate.streams import Window, stream

EVENTS_PER_CHUNK_LIMIT = 10**8  # message ids number a chunk's events from chunk * this


@dataclass(frozen=True, kw_only=True)
class ChunkJob:
    seed: int
    chunk: int
    population: pl.DataFrame  # the chunk's rows of `population.generate`
    truth: pl.DataFrame  # the same rows of `truth.latent`
    window: Window
    apps: identities.AppIds
    source_id: str
    message_prefix: str


@dataclass(frozen=True, kw_only=True)
class ChunkOutput:
    tables: dict[str, pl.DataFrame]  # bank table name → rows, all but `customers`
    aum: pl.DataFrame  # cust_no, aum at the end of the window (for the VIP level)
    records: pl.Series  # the events, encoded for the log, in time order
    partition_keys: pl.Series  # user_id, else anonymous_id, of each record
    identities: pl.DataFrame  # ground truth: cust_no, kind, value, appid


def simulate_chunk(job: ChunkJob) -> ChunkOutput:
    seed, chunk, window = job.seed, job.chunk, job.window
    population = job.population.with_columns(row=pl.int_range(pl.len(), dtype=pl.Int64))
    truth = job.truth
    opening = holdings.opening(stream(seed, "holdings", chunk), population, truth, window)
    span = activity.active_span(population, truth, window)
    actions = activity.plan(stream(seed, "activity", chunk), population, truth, opening.holdings, window)
    relationships = payroll.payroll(stream(seed, "payroll", chunk), population, window)
    salaries = payroll.salary_credits(stream(seed, "salary", chunk), relationships, window)
    ledger = transactions.book(
        stream(seed, "transactions", chunk), population, truth, opening.holdings, actions, salaries, window, span
    )
    balances = holdings.intervals(ledger.holdings, ledger.changes, window)
    tables = {
        "accounts": opening.accounts,
        "holdings": balances,
        "transactions": ledger.transactions,
        "payroll": payroll.payroll_rows(relationships),
        "rm_assignments": rm_assignment_rows(stream(seed, "rm", chunk), population, window),
    }
    ids = identities.digital_ids(stream(seed, "identities", chunk), population, truth)
    session_rng = stream(seed, "sessions", chunk)
    visits = pl.concat(
        [
            sessions.organic_sessions(session_rng, population, truth, span),
            sessions.action_sessions(session_rng, population, actions, ledger.churn_transfers),
        ]
    )
    steps = sessions.explode(session_rng, visits)
    events = behaviour.events(stream(seed, "events", chunk), population, visits, steps, ids, job.apps)
    encoded = records.encode(
        events, source_id=job.source_id, prefix=job.message_prefix, first_number=chunk * EVENTS_PER_CHUNK_LIMIT
    )
    return ChunkOutput(
        tables=tables,
        aum=end_aum(balances),
        records=encoded,
        partition_keys=events.select(pl.coalesce("user_id", "anonymous_id")).to_series(),
        identities=identities.truth_rows(ids, population, truth, job.apps),
    )
