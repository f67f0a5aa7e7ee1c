"""Rows of `customers` and `rm_assignments` from the clear population, with personal fields protected.

Names, phones and emails are encrypted with `FieldCipher.encrypt(value,
context=<column>)`; the phone (normalised) and the ID number are stored as
keyed hashes (`keyed_hash("phone", …)`, `keyed_hash("id_card", …)`); the
ID number itself is not stored. The VIP level is the tier of the AUM the
customer holds at the end of the window (`core.bank.VIP_THRESHOLDS`).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from marketloop.core.bank import ASSET_TYPES, CUSTOMERS, RM_ASSIGNMENTS, VIP_THRESHOLDS
from marketloop.security.crypto import FieldCipher
from marketloop.simulate import products as catalogue
from marketloop.simulate.population import EDUCATION, MARITAL, OCCUPATIONS
from marketloop.simulate.streams import Window, as_dates

_ASSET_CODES = [p.code for p in catalogue.CATALOGUE if p.type in ASSET_TYPES]


def end_aum(holdings: pl.DataFrame) -> pl.DataFrame:
    """AUM per customer on the last day of the window: current intervals of asset products (cust_no, aum)."""
    return (
        holdings.filter(pl.col("valid_to").is_null() & pl.col("product_code").is_in(_ASSET_CODES))
        .group_by("cust_no")
        .agg(aum=pl.col("balance").sum())
    )


def vip_levels(aum: pl.Expr) -> pl.Expr:
    """`core.bank.vip_tier`, vectorised."""
    tier = pl.lit(VIP_THRESHOLDS[-1][1])
    for threshold, name in reversed(VIP_THRESHOLDS[:-1]):
        tier = pl.when(aum >= threshold).then(pl.lit(name)).otherwise(tier)
    return tier


def protect(values: pl.Series, cipher: FieldCipher, column: str) -> pl.Series:
    encrypt = cipher.encrypt
    return pl.Series([None if v is None else encrypt(v, context=column) for v in values.to_list()], dtype=pl.String)


def keyed(values: pl.Series, cipher: FieldCipher, kind: str) -> pl.Series:
    hash_ = cipher.keyed_hash
    return pl.Series([hash_(kind, v) for v in values.to_list()], dtype=pl.String)


def customer_rows(population: pl.DataFrame, aum: pl.DataFrame, cipher: FieldCipher) -> pl.DataFrame:
    """Rows of `customers` for the chunk `population`, given its end-of-window AUM."""
    held = population.select("cust_no").join(aum, on="cust_no", how="left").select(pl.col("aum").fill_null(0.0))
    return population.select(
        "cust_no",
        name_enc=protect(population["name"], cipher, "name_enc"),
        name_prefix="family_name",
        phone_enc=protect(population["phone"], cipher, "phone_enc"),
        phone_hash=keyed(population["phone"], cipher, "phone"),
        id_card_hash=keyed(population["id_card"], cipher, "id_card"),
        email_enc=protect(population["email"], cipher, "email_enc"),
        gender="gender",
        birth_date=as_dates(population["birth_day"]),
        city=pl.col("city_name"),
        city_tier="city_tier",
        occupation=pl.Series(OCCUPATIONS).gather(population["occupation_index"]),
        marital_status=pl.Series(MARITAL).gather(population["marital_index"]),
        education=pl.Series(EDUCATION).gather(population["education_index"]),
        risk_tolerance=pl.lit("C") + pl.col("risk").cast(pl.String),
        risk_assessed_at=as_dates(population["risk_assessed_day"]),
        vip_level=held.select(vip_levels(pl.col("aum"))).to_series(),
        branch_id="branch_id",
        rm_id="rm_id",
        open_date=as_dates(population["open_day"]),
        status="status",
        credit_rating="credit_rating",
        fraud_flag="fraud_flag",
    ).select(CUSTOMERS.names)


def rm_assignment_rows(rng: np.random.Generator, population: pl.DataFrame, window: Window) -> pl.DataFrame:
    """Current RM of each managed customer since some day; 10 % had another RM before, 3 % changed in the window."""
    managed = population.filter(pl.col("rm_id").is_not_null())
    n = managed.height
    changed_recently = rng.random(n) < 0.03
    changed_before = ~changed_recently & (rng.random(n) < 0.1)
    opened = managed["open_day"].to_numpy()
    since = np.where(
        changed_recently,
        rng.integers(window.first, window.last + 1, n),
        np.maximum(opened, window.first - rng.integers(30, 1_500, n)),
    )
    since = np.maximum(since, opened + 1)
    current = managed.select("cust_no", "rm_id", valid_from=as_dates(pl.Series(since)), valid_to=pl.lit(None, pl.Date))
    earlier = changed_recently | changed_before
    previous_rm = managed["rm_id"].shuffle(seed=int(rng.integers(0, 2**31)))
    before = managed.select(
        "cust_no",
        rm_id=previous_rm,
        valid_from=as_dates(pl.Series(opened)),
        valid_to=as_dates(pl.Series(since - 1)),
    ).filter(pl.Series(earlier & (since - 1 >= opened)))
    return pl.concat([before, current]).select(RM_ASSIGNMENTS.names)
