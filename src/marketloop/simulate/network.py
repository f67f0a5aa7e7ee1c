"""The branch network and its relationship managers, sized by the number of customers.

Head office → one branch per city (分行) → sub-branches (支行) in proportion to
the city's share of customers → relationship managers (客户经理), about one per
250 customers of 5万+ AUM. Depends only on the customer count and the seed,
so every chunk of customers sees the same network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from marketloop.core.bank import BRANCHES, RELATIONSHIP_MANAGERS
from marketloop.simulate import reference as ref
from marketloop.simulate.streams import choice, stream

CUSTOMERS_PER_SUB_BRANCH = 3_000
MANAGED_SHARE = 0.22  # customers with AUM of 5万 or more, who get an RM
CUSTOMERS_PER_RM = 250


@dataclass(frozen=True, kw_only=True)
class Network:
    branches: pl.DataFrame
    managers: pl.DataFrame
    city_share: np.ndarray  # share of customers by city (catalogue order)
    city_first_sub: np.ndarray  # first sub-branch row of each city
    city_subs: np.ndarray  # sub-branches per city
    sub_ids: pl.Series  # sub-branch ids, grouped by city
    sub_first_rm: np.ndarray
    sub_rms: np.ndarray
    rm_ids: pl.Series  # RM ids, grouped by sub-branch


def city_shares() -> np.ndarray:
    tier_weight = {tier: sum(c.weight for c in ref.CITIES if c.tier == tier) for tier in ref.TIER_SHARE}
    return np.array([ref.TIER_SHARE[c.tier] * c.weight / tier_weight[c.tier] for c in ref.CITIES])


def build_network(seed: int, customers: int) -> Network:
    rng = stream(seed, "network")
    share = city_shares()
    total_subs = max(len(ref.CITIES), customers // CUSTOMERS_PER_SUB_BRANCH)
    subs = np.maximum(1, np.round(share * total_subs)).astype(np.int64)
    sub_city = np.repeat(np.arange(len(ref.CITIES)), subs)
    expected = customers * share[sub_city] / subs[sub_city]
    rms = np.maximum(1, np.round(expected * MANAGED_SHARE / CUSTOMERS_PER_RM)).astype(np.int64)
    branches = _branches(sub_city, subs)
    sub_ids = branches.filter(pl.col("level") == 2)["branch_id"]
    managers = _managers(rng, np.repeat(sub_ids.to_numpy(), rms))
    return Network(
        branches=branches,
        managers=managers,
        city_share=share,
        city_first_sub=np.concatenate([[0], np.cumsum(subs)[:-1]]),
        city_subs=subs,
        sub_ids=sub_ids,
        sub_first_rm=np.concatenate([[0], np.cumsum(rms)[:-1]]),
        sub_rms=rms,
        rm_ids=managers["rm_id"],
    )


def _branches(sub_city: np.ndarray, subs: np.ndarray) -> pl.DataFrame:
    cities = ref.CITIES
    head = [("HO", "总行", None, 0, "上海")]
    city_rows = [(f"BR{i + 1:03d}", f"{c.name}分行", "HO", 1, c.name) for i, c in enumerate(cities)]
    sub_rows = []
    position = np.arange(len(sub_city)) - np.concatenate([[0], np.cumsum(subs)[:-1]])[sub_city]
    for number, (city, k) in enumerate(zip(sub_city.tolist(), position.tolist(), strict=True)):
        streets = ref.BRANCH_STREETS
        street = streets[k % len(streets)] + ("" if k < len(streets) else str(k // len(streets) + 1))
        name = f"{cities[city].name}{street}支行"
        sub_rows.append((f"SB{number + 1:05d}", name, f"BR{city + 1:03d}", 2, cities[city].name))
    rows = head + city_rows + sub_rows
    return pl.DataFrame(rows, schema=list(BRANCHES.names), orient="row", schema_overrides={"level": pl.Int64})


def _managers(rng: np.random.Generator, branch_ids: np.ndarray) -> pl.DataFrame:
    count = len(branch_ids)
    family = [f for f, _, _ in ref.FAMILY_NAMES]
    weights = [w for _, _, w in ref.FAMILY_NAMES]
    given = [c for c, _ in ref.GIVEN_MALE + ref.GIVEN_FEMALE]
    names = pl.Series(family).gather(choice(rng, weights, count)) + pl.Series(given).gather(
        rng.integers(0, len(given), count)
    )
    phones = pl.Series(rng.integers(13 * 10**9, 20 * 10**9, count)).cast(pl.String)
    return pl.DataFrame(
        {
            "rm_id": pl.Series([f"RM{i + 1:06d}" for i in range(count)]),
            "name": names,
            "branch_id": pl.Series(branch_ids.astype(str)),
            "phone": phones,
        }
    ).select(RELATIONSHIP_MANAGERS.names)
