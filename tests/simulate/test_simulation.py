"""A small simulation into a real data directory: tables, events, ground truth, determinism, refusal, --force."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import msgspec
import polars as pl
import pytest

from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core.bank import BANK_TABLES, TABLES_BY_NAME, vip_tier
from marketloop.core.errors import MarketloopError
from marketloop.core.events import Event
from marketloop.ports.eventlog import START
from marketloop.simulate import run
from marketloop.simulate.chunk import ChunkJob, simulate_chunk
from marketloop.simulate.identities import app_ids
from marketloop.simulate.network import build_network
from marketloop.simulate.population import generate
from marketloop.simulate.streams import Window
from marketloop.simulate.truth import latent

PLAN = run.Plan(customers=600, days=10, seed=5, end=date(2025, 6, 30), chunk_size=250)
CIPHERTEXT_COLUMNS = ("name_enc", "phone_enc", "email_enc")


@dataclass
class Simulated:
    container: Container
    summary: run.Summary


def _simulate(container: Container, plan: run.Plan = PLAN, *, force: bool = False) -> run.Summary:
    target = run.Target(
        bank=container.bank,
        log=container.log,
        loader=container.loader,
        sources=container.sources,
        cipher=container.cipher,
        data_dir=container.settings.data_dir,
    )
    return asyncio.run(run.simulate(target, plan, force=force))


def _open(path: Path, key_file: Path) -> Container:
    return Container.open(Settings.model_validate({"data_dir": path, "security": {"key_file": key_file}}))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys") / "field-keys.json"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory, keys: Path) -> Iterator[Simulated]:
    container = _open(tmp_path_factory.mktemp("bank"), keys)
    try:
        yield Simulated(container=container, summary=_simulate(container))
    finally:
        container.close()


def table(container: Container, name: str) -> pl.DataFrame:
    spec = TABLES_BY_NAME[name]
    columns = ", ".join(c for c in spec.names if c not in CIPHERTEXT_COLUMNS)
    order = ", ".join(spec.key)
    frame: pl.DataFrame = container.warehouse.cursor().sql(f"SELECT {columns} FROM {name} ORDER BY {order}").pl()
    return frame


def events(container: Container) -> pl.DataFrame:
    sql = (
        "SELECT message_id, type, event, anonymous_id, user_id, timestamp, properties, traits, context "
        "FROM events ORDER BY message_id"
    )
    frame: pl.DataFrame = container.warehouse.cursor().sql(sql).pl()
    return frame


def test_every_bank_table_is_filled(simulated: Simulated) -> None:
    rows = simulated.summary.rows
    for spec in BANK_TABLES:
        assert rows[spec.name] > 0, spec.name
        assert simulated.container.bank.count(spec) == rows[spec.name]
    assert rows["customers"] == PLAN.customers


def test_events_load_into_the_warehouse(simulated: Simulated) -> None:
    container, summary = simulated.container, simulated.summary
    assert summary.events > PLAN.customers * 2
    assert summary.loaded == summary.events
    assert container.warehouse.count_events() == summary.events
    names = set(events(container)["event"].drop_nulls().unique().to_list())
    expected = {"app_launch", "login", "$pageview", "wealth_product_view", "product_detail_view", "purchase"}
    assert expected | {"wechat_article_read", "mini_program_visit", "transfer_out"} <= names


def test_log_records_are_encoded_events(simulated: Simulated) -> None:
    records = list(simulated.container.log.read(0, START, 5_000))
    decoded = [msgspec.json.decode(r.value, type=Event) for r in records]
    assert {e.type for e in decoded} == {"track", "identify"}
    for record, event in zip(records, decoded, strict=True):
        assert msgspec.json.encode(event) == record.value  # byte for byte what CollectService writes
    identify = next(e for e in decoded if e.type == "identify")
    assert identify.user_id
    assert identify.anonymous_id
    assert identify.traits["cust_no"].startswith("C")


def test_customers_are_protected_and_their_vip_level_is_their_aum(simulated: Simulated) -> None:
    container = simulated.container
    raw = container.warehouse.cursor().sql("SELECT cust_no, name_enc, phone_enc, vip_level FROM customers").pl()
    name = container.cipher.decrypt(raw["name_enc"][0], context="name_enc")
    assert 2 <= len(name) <= 4
    assert len(container.cipher.decrypt(raw["phone_enc"][0], context="phone_enc")) == 11
    held = container.warehouse.cursor().execute(
        "SELECT h.cust_no, sum(h.balance)::DOUBLE AS aum FROM holdings h JOIN products p USING (product_code) "
        "WHERE h.valid_to IS NULL AND p.product_type IN ('deposit', 'wealth', 'fund', 'insurance') GROUP BY 1"
    )
    aum = dict(held.fetchall())
    for cust_no, vip in raw.select("cust_no", "vip_level").iter_rows():
        assert vip == vip_tier(aum.get(cust_no, 0.0))


def test_nobody_holds_a_product_above_their_risk_tolerance(simulated: Simulated) -> None:
    mismatched = simulated.container.warehouse.cursor().execute(
        "SELECT count(*) FROM holdings h JOIN products p USING (product_code) JOIN customers c USING (cust_no) "
        "WHERE p.risk_level IS NOT NULL AND right(p.risk_level, 1)::INT > right(c.risk_tolerance, 1)::INT"
    )
    assert mismatched.fetchone() == (0,)


def test_balance_intervals_do_not_overlap_and_deposits_stay_positive(simulated: Simulated) -> None:
    holdings = table(simulated.container, "holdings").sort("holding_id", "valid_from")
    checked = holdings.with_columns(next_from=pl.col("valid_from").shift(-1).over("holding_id"))
    inner = checked.filter(pl.col("next_from").is_not_null())
    assert (inner["valid_to"] < inner["next_from"]).all()
    closed = checked.filter(pl.col("valid_to").is_not_null())
    assert (closed["valid_to"] >= closed["valid_from"]).all()
    assert holdings.filter(pl.col("valid_to").is_null()).group_by("holding_id").len()["len"].max() == 1
    assert holdings.filter(pl.col("product_code") == "DEP-DEMAND")["balance"].min() >= 0


def test_nothing_happens_before_the_customer_opened_the_account(simulated: Simulated) -> None:
    cursor = simulated.container.warehouse.cursor()
    checks = {
        "holdings": "SELECT count(*) FROM holdings h JOIN customers c USING (cust_no) WHERE h.start_date < c.open_date",
        "accounts": "SELECT count(*) FROM accounts a JOIN customers c USING (cust_no) WHERE a.open_date < c.open_date",
        "transactions": "SELECT count(*) FROM transactions t JOIN customers c USING (cust_no) "
        "WHERE (t.ts + INTERVAL 8 HOUR)::DATE < c.open_date",
        "payroll": "SELECT count(*) FROM payroll p JOIN customers c USING (cust_no) WHERE p.start_date < c.open_date",
    }
    for name, sql in checks.items():
        assert cursor.execute(sql).fetchone() == (0,), name


def test_purchases_match_transactions_and_new_holdings(simulated: Simulated) -> None:
    container = simulated.container
    bought = events(container).filter(pl.col("event") == "purchase")
    holding_ids = bought.select(pl.col("properties").str.json_path_match("$.holding_id")).to_series()
    holdings = table(container, "holdings")
    assert set(holding_ids.to_list()) <= set(holdings["holding_id"].to_list())
    investments = table(container, "transactions").filter(pl.col("category") == "investment")
    assert investments.height >= bought.height > 0


def test_ground_truth_is_written_with_its_documented_columns(simulated: Simulated) -> None:
    directory = Path(simulated.summary.ground_truth)
    customers = pl.read_parquet(directory / "customers.parquet")
    assert customers.columns == list(run.TRUTH_COLUMNS)
    assert customers.height == PLAN.customers
    identities = pl.read_parquet(directory / "identities.parquet")
    kinds = set(identities["kind"].unique().to_list())
    assert {"cust_no", "user_id", "device_id", "anonymous_id", "openid", "unionid", "phone_hash"} <= kinds
    per_person = identities.group_by("cust_no").len()["len"]
    assert per_person.mean() > 3  # type: ignore[operator]
    model = json.loads((directory / "response_model.json").read_text())
    assert model["seed"] == PLAN.seed
    assert {"p_open", "p_convert", "uplift", "churn_hazard"} <= set(model["formulas"])
    assert json.loads((directory / "run.json").read_text())["status"] == "complete"


def test_identify_events_tie_login_ids_to_the_right_customer(simulated: Simulated) -> None:
    truth = pl.read_parquet(Path(simulated.summary.ground_truth) / "customers.parquet").select("cust_no", "user_id")
    identifies = events(simulated.container).filter(pl.col("type") == "identify")
    claimed = identifies.select("user_id", cust_no=pl.col("traits").str.json_path_match("$.cust_no"))
    joined = claimed.join(truth, on="user_id", how="left", suffix="_truth")
    assert joined.height > 0
    assert (joined["cust_no"] == joined["cust_no_truth"]).all()


def test_an_existing_bank_is_refused_and_force_changes_nothing(simulated: Simulated) -> None:
    container = simulated.container
    with pytest.raises(MarketloopError) as refused:
        _simulate(container)
    assert refused.value.code == "simulate.bank-exists"
    other = run.Plan(customers=700, days=PLAN.days, seed=PLAN.seed, end=PLAN.end, chunk_size=PLAN.chunk_size)
    with pytest.raises(MarketloopError, match="another plan"):
        _simulate(container, other, force=True)
    before = {spec.name: table(container, spec.name) for spec in BANK_TABLES}
    again = _simulate(container, force=True)
    assert again.events == simulated.summary.events
    assert container.warehouse.count_events() == simulated.summary.events
    for spec in BANK_TABLES:
        assert table(container, spec.name).equals(before[spec.name]), spec.name


def test_the_same_seed_gives_the_same_bank_and_another_seed_another(
    simulated: Simulated, tmp_path: Path, keys: Path
) -> None:
    same = _open(tmp_path / "same", keys)
    other = _open(tmp_path / "other", keys)
    try:
        _simulate(same)
        _simulate(other, run.Plan(customers=600, days=10, seed=6, end=PLAN.end, chunk_size=250))
        for spec in BANK_TABLES:
            assert table(same, spec.name).equals(table(simulated.container, spec.name)), spec.name
        assert events(same).equals(events(simulated.container))
        assert not table(other, "customers").equals(table(same, "customers"))
        assert not events(other).equals(events(same))
    finally:
        same.close()
        other.close()


@pytest.mark.slow
def test_chunks_simulated_in_worker_processes_are_identical() -> None:
    window = Window(end=PLAN.end, days=PLAN.days)
    population = generate(PLAN.seed, 400, window, build_network(PLAN.seed, 400))
    traits = latent(PLAN.seed, population, window)
    jobs = [
        ChunkJob(
            seed=PLAN.seed,
            chunk=chunk,
            population=population.slice(chunk * 200, 200),
            truth=traits.slice(chunk * 200, 200),
            window=window,
            apps=app_ids(PLAN.seed),
            source_id="s",
            message_prefix="p",
        )
        for chunk in range(2)
    ]
    in_process = [simulate_chunk(job).records for job in jobs]
    pooled = [output.records for _, output in run._outputs(iter(jobs), workers=2)]
    assert all(a.equals(b) for a, b in zip(in_process, pooled, strict=True))


def test_the_profile_sees_each_platform_and_the_app_logins(simulated: Simulated) -> None:
    container = simulated.container
    container.profiles.refresh(as_of=datetime.combine(PLAN.end, time(23, 59), tzinfo=UTC))
    row = (
        container.warehouse.cursor()
        .execute(
            "SELECT count(last_app_at), count(last_mini_program_at), count(last_wechat_at), count(last_h5_at), "
            "sum(app_logins_30d) FROM customer_profile"
        )
        .fetchone()
    )
    assert row is not None
    *last_seen, app_logins = row
    assert min(last_seen) > 0, f"customers last seen on app, mini-program, WeChat, H5: {last_seen}"
    assert app_logins > 0
