"""Lookalike expansion: time, holdout AUC and precision against a planted ground truth.

What it does:

1. opens a marketloop data directory (`Container.open`) and fills it,
   vectorised with numpy and polars, with `--customers` customers and their
   profile rows. A hidden group (`--group` share) differs from the rest in
   age, AUM, logins and fund page views, with overlap; payroll (`代发`) is
   set for half the group and 3% of the others;
2. saves the seed segment `payroll_customer = true` and expands it with
   `LookalikeService.expand` to as many customers as the group has members
   outside the seed, the way the CLI and the API do (payroll itself is not
   learnt from: it is the seed's own condition);
3. scores the expansion against the planted truth: precision (how many of
   the chosen are in the group) against the base rate (what a random pick
   would get) and recall of the group's hidden members.

With `--simulated`, it runs the simulator instead (`marketloop simulate`,
then `marketloop customers refresh` builds the profile), takes the wealth
holders (`holds(product_type = "wealth")`) as the seed, leaves out the
profile figures that restate holding wealth (`LEAKY_WEALTH`), expands to
`--size` customers and scores the expansion against the simulator's hidden
`wealth_propensity`: its mean over the expansion, the seed and the others,
and precision for the top quartile of propensity against its base rate.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from marketloop.app.container import Container
from marketloop.app.settings import Settings

AS_OF = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
PROFILE = """
CREATE TABLE customer_profile (
    cust_no VARCHAR, age BIGINT, aum DECIMAL(18, 2), logins_30d BIGINT, fund_page_views_30d BIGINT,
    payroll_customer BOOLEAN, vip_tier VARCHAR
)
"""


def cust_nos(n: int) -> pl.Series:
    digits = pl.Series("n", np.arange(n)).cast(pl.String).str.zfill(7)
    return pl.select(pl.concat_str([pl.lit("C"), digits])).to_series().alias("cust_no")


def frames(n: int, group_share: float) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(20261124)
    group = rng.random(n) < group_share
    customers = pl.DataFrame(
        {
            "cust_no": cust_nos(n),
            "gender": rng.choice(["M", "F"], n),
            "city_tier": rng.integers(1, 6, n),
            "branch_id": rng.choice(["B01", "B02", "B03"], n),
            "status": "active",
            "open_date": AS_OF.date(),
        }
    )
    profile = pl.DataFrame(
        {
            "cust_no": cust_nos(n),
            "age": np.where(group, rng.integers(30, 39, n), rng.integers(20, 71, n)),
            "aum": np.round(np.where(group, rng.lognormal(13, 0.8, n), rng.lognormal(10.5, 0.8, n)), 2),
            "logins_30d": np.where(group, rng.integers(8, 21, n), rng.integers(0, 13, n)),
            "fund_page_views_30d": np.where(group, rng.integers(3, 11, n), rng.integers(0, 5, n)),
            "payroll_customer": rng.random(n) < np.where(group, 0.5, 0.03),
            "vip_tier": rng.choice(["standard", "gold", "diamond"], n),
        }
    )
    return customers, profile, group


LEAKY_WEALTH = ["wealth_balance", "products_held", "wealth_maturing_7d", "wealth_maturing_30d", "next_maturity_date"]


def simulated(customers: int, size: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="marketloop-bench-lookalike-") as folder:
        data = Path(folder) / "data"
        marketloop = str(Path(sys.executable).with_name("marketloop"))
        common = ["--data-dir", str(data)]
        simulate = [marketloop, "simulate", "--customers", str(customers), "--days", "30", *common]
        subprocess.run(simulate, check=True, capture_output=True)
        subprocess.run([marketloop, "customers", "refresh", *common], check=True, capture_output=True)
        truth = pl.read_parquet(data / "ground_truth" / "customers.parquet").select("cust_no", "wealth_propensity")
        container = Container.open(Settings(data_dir=data))
        try:
            definition = 'holds(product_type = "wealth")'
            seed = container.segments.save("理财持有客户", definition)
            members = set(container.segments.preview(definition, limit=customers))
            started = time.perf_counter()
            result = container.lookalikes.expand(seed.segment_id, size=size, exclude=LEAKY_WEALTH)
            expand_s = time.perf_counter() - started
        finally:
            container.close()
    in_seed = pl.col("cust_no").is_in(list(members))
    others = truth.filter(~in_seed)
    chosen = others.filter(pl.col("cust_no").is_in([m.cust_no for m in result.members]))
    top = truth.get_column("wealth_propensity").quantile(0.75) or 0.0
    return {
        "benchmark": "segments.lookalike.simulated",
        "customers": customers,
        "seed": len(members),
        "expansion": result.report.size,
        "expand_s": round(expand_s, 2),
        "auc": round(result.report.auc, 4),
        "propensity_seed": round(float(truth.filter(in_seed)["wealth_propensity"].mean() or 0), 4),
        "propensity_expansion": round(float(chosen["wealth_propensity"].mean() or 0), 4),
        "propensity_others": round(float(others["wealth_propensity"].mean() or 0), 4),
        "precision_top_quartile": round(float((chosen["wealth_propensity"] >= top).mean() or 0), 4),
        "base_rate_top_quartile": round(float((others["wealth_propensity"] >= top).mean() or 0), 4),
        "top_features": [i.feature for i in result.report.importances[:3]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--group", type=float, default=0.1, help="share of customers in the planted group")
    parser.add_argument("--simulated", action="store_true", help="the simulator's bank and ground truth")
    parser.add_argument("--size", type=int, default=500, help="expansion size with --simulated")
    args = parser.parse_args()
    if args.simulated:
        sys.stdout.write(json.dumps(simulated(args.customers, args.size)) + "\n")
        return
    customers, profile, group = frames(args.customers, args.group)
    with tempfile.TemporaryDirectory(prefix="marketloop-bench-lookalike-") as folder:
        container = Container.open(Settings(data_dir=Path(folder) / "data"))
        try:
            con = container.warehouse.cursor()
            con.execute(PROFILE)
            for table, frame in (("customers", customers), ("customer_profile", profile)):
                con.register("frame", frame)
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM frame")
                con.unregister("frame")
            seed = container.segments.save("代发客户", "payroll_customer = true")
            in_seed = profile.get_column("payroll_customer").to_numpy()
            hidden = group & ~in_seed
            started = time.perf_counter()
            result = container.lookalikes.expand(seed.segment_id, size=int(hidden.sum()), as_of=AS_OF)
            expand_s = time.perf_counter() - started
        finally:
            container.close()
    names = customers.get_column("cust_no").to_list()
    truth = {names[i] for i in np.flatnonzero(hidden)}
    chosen = {m.cust_no for m in result.members}
    report = result.report
    found = {
        "benchmark": "segments.lookalike",
        "customers": args.customers,
        "seed": report.seed_size,
        "sample": report.sample_size,
        "expansion": report.size,
        "expand_s": round(expand_s, 2),
        "auc": round(report.auc, 4),
        "precision": round(len(chosen & truth) / len(chosen), 4),
        "base_rate": round(len(truth) / report.candidates, 4),
        "recall": round(len(chosen & truth) / len(truth), 4),
        "top_features": [i.feature for i in report.importances[:3]],
    }
    sys.stdout.write(json.dumps(found) + "\n")


if __name__ == "__main__":
    main()
