"""A synthetic bank for benchmarks/profile.py, generated vectorised (numpy, polars, DuckDB SQL) and seeded.

Per customer, on average: 3.5 holdings with 3 balance intervals each (about
10 holding rows), 20 transactions over 120 days, 10 events over 60 days
(70 % of customers are app users). Names and phone ciphertexts come from a
pool of 10,000 encrypted values (encrypting a million values one by one
would dominate the run); phone hashes are real and unique, so phone search
finds exactly one customer.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import polars as pl

from marketloop.core import bank
from marketloop.ports.bank import BankStore
from marketloop.security.crypto import FieldCipher

FAMILY = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红建国"
CITIES = [("上海", 1), ("北京", 1), ("深圳", 1), ("广州", 1), ("杭州", 2), ("南京", 2), ("成都", 2), ("武汉", 2),
          ("苏州", 2), ("西安", 2), ("宁波", 3), ("无锡", 3), ("佛山", 3), ("合肥", 3), ("昆明", 3), ("扬州", 4),
          ("绍兴", 4), ("台州", 4), ("丽水", 5), ("衢州", 5)]  # fmt: skip
PRODUCTS = [  # code, name, type, term days (maturing products)
    ("DEP-DEMAND", "活期存款", "deposit", None),
    ("DEP-TD-1Y", "整存整取一年", "deposit", 365),
    ("DEP-TD-3Y", "整存整取三年", "deposit", 1095),
    ("WM-R2-090D", "稳享90天持有期", "wealth", 90),
    ("WM-R2-365D", "安盈一年定开", "wealth", 365),
    ("WM-R1-CASH", "天天盈现金管理", "wealth", None),
    ("FD-MMF", "货币市场基金A", "fund", None),
    ("FD-CSI300", "沪深300指数基金", "fund", None),
    ("INS-ANN", "十年期年金保险", "insurance", None),
    ("LN-MORT", "个人住房贷款", "loan", None),
    ("LN-CONS", "个人消费贷款", "loan", None),
    ("CC-STD", "标准信用卡", "credit_card", None),
    ("CC-GOLD", "金卡信用卡", "credit_card", None),
]
PRODUCT_WEIGHTS = np.array([30, 8, 4, 6, 4, 8, 10, 5, 3, 4, 4, 10, 4], dtype=float)
CHANNELS = np.array(["mobile", "counter", "atm", "online", "pos", "wechat", "third_party"])
COUNTERPARTIES = np.array(["self", "same_bank", "other_bank", "merchant", "employer"])
POOL = 10_000


def _days(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def _dates(days: np.ndarray) -> pl.Series:
    return pl.Series(days.astype("int32")).cast(pl.Date)


def ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    """`prefix` + zero-padded numbers, e.g. C000000042."""
    return prefix + pl.Series(numbers).cast(pl.String).str.zfill(width)


def cust_numbers(start: int, count: int) -> pl.Series:
    return ids("C", np.arange(start, start + count), 9)


def reference(store: BankStore) -> None:
    """Branches, relationship managers and products."""
    store.append(bank.BRANCHES, pl.DataFrame({
        "branch_id": [f"B{i:03d}" for i in range(200)], "name": [f"支行{i:03d}" for i in range(200)],
        "level": [2] * 200, "city": [CITIES[i % len(CITIES)][0] for i in range(200)],
    }))  # fmt: skip
    store.append(bank.RELATIONSHIP_MANAGERS, pl.DataFrame({
        "rm_id": [f"R{i:04d}" for i in range(2000)], "name": [f"客户经理{i:04d}" for i in range(2000)],
        "branch_id": [f"B{i % 200:03d}" for i in range(2000)],
    }))  # fmt: skip
    store.append(bank.PRODUCTS, pl.DataFrame({
        "product_code": [p[0] for p in PRODUCTS], "name": [p[1] for p in PRODUCTS],
        "product_type": [p[2] for p in PRODUCTS], "term_days": [p[3] for p in PRODUCTS],
    }, schema_overrides={"term_days": pl.Int64}))  # fmt: skip


class Pools:
    """Encrypted names and phones to draw from, and the clear names behind them (for name searches)."""

    def __init__(self, cipher: FieldCipher, rng: np.random.Generator) -> None:
        family = rng.choice(list(FAMILY), POOL)
        given = ["".join(rng.choice(list(GIVEN), 2)) for _ in range(POOL)]
        self.names = [f + g for f, g in zip(family, given, strict=True)]
        self.families = np.array(list(family))
        self.name_enc = np.array([cipher.encrypt(n, context="name_enc") for n in self.names])
        phones = [str(13_900_000_000 + i) for i in range(POOL)]
        self.phone_enc = np.array([cipher.encrypt(p, context="phone_enc") for p in phones])


def customers(start: int, count: int, cipher: FieldCipher, pools: Pools, rng: np.random.Generator) -> pl.DataFrame:
    pick = rng.integers(0, POOL, count)
    city = rng.integers(0, len(CITIES), count)
    phones = (13_000_000_000 + 3 * np.arange(start, start + count)).astype(str)
    assessed = _days(date(2026, 11, 1)) - rng.integers(0, 1100, count)
    return pl.DataFrame({
        "cust_no": cust_numbers(start, count),
        "name_enc": pools.name_enc[pick], "name_prefix": pools.families[pick], "phone_enc": pools.phone_enc[pick],
        "phone_hash": [cipher.keyed_hash("phone", p) for p in phones],
        "gender": rng.choice(["M", "F"], count),
        "birth_date": _dates(_days(date(1945, 1, 1)) + rng.integers(0, 60 * 365, count)),
        "city": [CITIES[c][0] for c in city], "city_tier": [CITIES[c][1] for c in city],
        "occupation": rng.choice(["employee", "civil_servant", "professional", "business_owner", "retired"], count),
        "marital_status": rng.choice(["single", "married", "divorced", "widowed"], count, p=[0.3, 0.6, 0.07, 0.03]),
        "education": rng.choice(["high_school", "bachelor", "master", "doctor"], count, p=[0.4, 0.45, 0.13, 0.02]),
        "risk_tolerance": rng.choice(["C1", "C2", "C3", "C4", "C5"], count, p=[0.08, 0.22, 0.38, 0.22, 0.10]),
        "risk_assessed_at": _dates(assessed),
        "branch_id": ids("B", rng.integers(0, 200, count), 3),
        "rm_id": ids("R", rng.integers(0, 2000, count), 4),
        "open_date": _dates(_days(date(2005, 1, 1)) + rng.integers(0, 21 * 365, count)),
        "status": rng.choice(["active", "dormant"], count, p=[0.9, 0.1]),
        "credit_rating": rng.choice(["AA", "A", "B", "C"], count),
        "fraud_flag": rng.random(count) < 0.002,
    })  # fmt: skip


def holdings(start: int, count: int, as_of: date, rng: np.random.Generator) -> pl.DataFrame:
    """Holdings with 1 + Poisson(2) balance intervals each, the last one open."""
    per_customer = 1 + rng.poisson(2.5, count)
    owner = np.repeat(np.arange(start, start + count), per_customer)
    n = owner.size
    product = rng.choice(len(PRODUCTS), n, p=PRODUCT_WEIGHTS / PRODUCT_WEIGHTS.sum())
    intervals = 1 + rng.poisson(2.0, n)
    holding = np.repeat(np.arange(n), intervals)
    first = np.r_[0, np.cumsum(intervals)[:-1]]
    position = np.arange(holding.size) - np.repeat(first, intervals)
    gaps = rng.integers(1, 45, holding.size)
    gaps[position == 0] = 0
    cumulative = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first], intervals)
    start_day = np.repeat(_days(as_of) - rng.integers(30, 400, n), intervals)
    valid_from = start_day + cumulative
    last = position == np.repeat(intervals - 1, intervals)
    valid_to = np.where(last, -1, np.r_[valid_from[1:], 0] - 1)
    base = np.repeat(np.exp(rng.normal(10.0, 1.6, n)), intervals)
    balance = np.round(base * rng.uniform(0.7, 1.3, holding.size), 2)
    kind = np.repeat(product, intervals)
    term = np.array([p[3] or 0 for p in PRODUCTS])[kind]
    is_card = np.isin(kind, [11, 12])
    frame = pl.DataFrame({
        "holding_id": ids("H", holding + start * 10, 1),
        "cust_no": ids("C", np.repeat(owner, intervals), 9),
        "product_code": np.array([p[0] for p in PRODUCTS])[kind],
        "balance": balance,
        "valid_from": _dates(valid_from),
        "valid_to": _dates(valid_to),
        "maturity_date": _dates(start_day + term),
        "credit_limit": np.where(is_card, 50_000.0, np.nan),
    })  # fmt: skip
    return frame.with_columns(
        pl.when(pl.col("valid_to") < pl.date(1971, 1, 1)).then(None).otherwise(pl.col("valid_to")).alias("valid_to"),
        pl.when(pl.Series(term == 0)).then(None).otherwise(pl.col("maturity_date")).alias("maturity_date"),
        pl.col("credit_limit").fill_nan(None),
    )


def transactions(start: int, count: int, as_of: datetime, rng: np.random.Generator) -> pl.DataFrame:
    per_customer = rng.poisson(20, count)
    owner = np.repeat(np.arange(start, start + count), per_customer)
    n = owner.size
    seconds = rng.integers(0, 120 * 86_400, n)
    counterparty = rng.choice(COUNTERPARTIES, n, p=[0.2, 0.2, 0.15, 0.4, 0.05])
    direction = np.where(counterparty == "employer", "in", rng.choice(["in", "out"], n, p=[0.4, 0.6]))
    end_us = int(as_of.timestamp() * 1_000_000) - 1
    return pl.DataFrame({
        "txn_id": ids("T", np.arange(n) + start * 40, 1),
        "cust_no": ids("C", owner, 9),
        "ts": pl.Series(end_us - seconds * 1_000_000).cast(pl.Datetime("us", "UTC")),
        "amount": np.round(np.exp(rng.normal(6.5, 1.5, n)), 2),
        "direction": direction,
        "channel": rng.choice(CHANNELS, n, p=[0.45, 0.05, 0.05, 0.1, 0.15, 0.15, 0.05]),
        "counterparty_type": counterparty,
        "category": np.where(counterparty == "employer", "salary", "transfer"),
    })  # fmt: skip


EVENT_NAMES = ["login", "app_start", "fund_page_view", "wealth_product_view", "transfer", "home_view", "search"]
LIBS = ['{"library":{"$lib":"iOS"}}', '{"library":{"$lib":"Android"}}', '{"library":{"$lib":"MiniProgram"}}',
        '{"library":{"name":"analytics.js"}}']  # fmt: skip


def events_sql(customers_count: int, events_count: int, as_of: datetime) -> str:
    """An INSERT of `events_count` events of the first 70 % of customers over 60 days (DuckDB's own hash as RNG)."""
    names = "[" + ", ".join(f"'{n}'" for n in EVENT_NAMES) + "]"
    libs = "[" + ", ".join(f"'{lib}'" for lib in LIBS) + "]"
    active = max(1, int(customers_count * 0.7))
    return f"""
    INSERT INTO events BY NAME
    SELECT 'bench-' || i AS message_id, 'track' AS type,
           {names}[CAST(1 + hash(i, 1) % {len(EVENT_NAMES)} AS BIGINT)] AS event,
           'C' || lpad(CAST(hash(i, 2) % {active} AS VARCHAR), 9, '0') AS user_id,
           'dev-' || CAST(hash(i, 2) % {active} AS VARCHAR) AS anonymous_id,
           TIMESTAMPTZ '{as_of.isoformat()}' - to_seconds(CAST(hash(i, 3) % (60 * 86400) AS BIGINT)) AS timestamp,
           TIMESTAMPTZ '{as_of.isoformat()}' AS received_at, 'bench' AS source,
           '{{"amount": 100}}'::JSON AS properties, '{{}}'::JSON AS traits,
           CAST({libs}[CAST(1 + hash(i, 4) % {len(LIBS)} AS BIGINT)] AS JSON) AS context,
           i + 1 AS load_seq
    FROM range({events_count}) t(i)
    """
