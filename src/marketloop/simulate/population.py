"""The simulated customers: who they are, where they bank, what they own at the start, and their identifiers.

`generate` draws the whole population at once (one row per customer, in
clear), vectorised; `customer_rows` turns it into rows of the `customers`
table with personal fields encrypted and hashed. Distributions:

* age: a working-age mode (mean 40, sd 13) and a retired mode (mean 65);
  occupation, education and marital status depend on the age band;
* city: 52 real cities in five tiers, weighted by tier (`reference.TIER_SHARE`);
* AUM: log-normal, ln AUM ~ N(9.0 + shifts for age, tier and occupation, 2.1),
  which puts about 1 % of customers over 50万 and gives the top 1 % roughly
  40 % of all assets (the heavy tail banks see); dormant customers hold
  next to nothing;
* risk tolerance C1–C5 from a latent score rising with AUM and falling with
  age, cut at fixed points (about 8/22/38/22/10 %); customers of 70 and over
  are capped at C3, as banks' elderly-customer rules require;
* identifiers: GB 11643 ID numbers whose region, birth date, gender digit and
  check digit are right and unique; unique mobile numbers (0.5 % of customers
  share a family member's number instead, as happens); a mobile-banking login
  id; an email for about a third.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from marketloop.simulate import reference as ref
from marketloop.simulate.network import Network
from marketloop.simulate.streams import Window, choice, choice_rows, stream

OCCUPATIONS = (
    "student",
    "employee",
    "civil_servant",
    "professional",
    "business_owner",
    "self_employed",
    "worker",
    "farmer",
    "freelancer",
    "retired",
)
# rows: age bands <23, 23–35, 35–50, 50–60, 60+
OCCUPATION_BY_AGE = np.array(
    [
        [55, 25, 1, 2, 1, 4, 7, 1, 4, 0],
        [2, 45, 8, 12, 5, 8, 10, 3, 7, 0],
        [0, 38, 9, 12, 10, 11, 11, 5, 4, 0],
        [0, 30, 9, 8, 9, 10, 12, 8, 3, 11],
        [0, 3, 1, 2, 3, 3, 2, 4, 2, 80],
    ],
    dtype=np.float64,
)
OCCUPATION_AUM_SHIFT = np.array([-1.2, 0.0, 0.3, 0.5, 1.0, 0.2, -0.4, -0.7, 0.0, 0.2])
EDUCATION = ("junior_high_or_below", "high_school", "associate", "bachelor", "master", "doctorate")
EDUCATION_BY_AGE = np.array(
    [
        [10, 30, 30, 28, 2, 0],
        [8, 20, 27, 35, 9, 1],
        [15, 25, 25, 28, 6, 1],
        [30, 30, 20, 16, 3, 1],
        [45, 30, 12, 11, 2, 0],
    ],
    dtype=np.float64,
)
MARITAL = ("single", "married", "divorced", "widowed")
MARITAL_BY_AGE = np.array(
    [[95, 5, 0, 0], [40, 57, 3, 0], [8, 82, 8, 2], [3, 84, 8, 5], [2, 73, 6, 19]], dtype=np.float64
)
AGE_AUM_SHIFT = np.array([-1.2, -0.2, 0.3, 0.6, 0.5])
TIER_AUM_SHIFT = np.array([0.0, 0.5, 0.25, 0.0, -0.25, -0.5])
LN_AUM_MEAN, LN_AUM_SD = 9.0, 2.1
RISK_CUTS = np.array([-1.405, -0.524, 0.468, 1.2816])  # standard-normal quantiles 8 / 30 / 68 / 90 %
CREDIT_GRADES = ("AAA", "AA", "A", "BBB", "BB", "B", "C")
CREDIT_CUTS = np.array([1.645, 0.842, 0.0, -0.842, -1.405, -2.054])
NEW_CUSTOMER_SHARE = 0.03
_DAYS_PER_YEAR = 365.25


def _age_band(age: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.array([23.0, 35.0, 50.0, 60.0]), age, side="right")


def generate(seed: int, customers: int, window: Window, network: Network) -> pl.DataFrame:
    """The whole population, in clear, one row per customer (column `index` = 0 … customers-1)."""
    rng = stream(seed, "population")
    frame = _demographics(rng, customers, window, network)
    frame = _wealth(rng, frame)
    frame = _relationships(rng, frame, window, network)
    return _identifiers(seed, rng, frame)


def _demographics(rng: np.random.Generator, n: int, window: Window, network: Network) -> pl.DataFrame:
    retired_mode = rng.random(n) < 0.15
    age = np.where(retired_mode, rng.normal(65, 8, n), rng.normal(40, 13, n)).clip(18, 92)
    birth = window.last - np.floor(age * _DAYS_PER_YEAR).astype(np.int64)
    age = (window.last - birth) / _DAYS_PER_YEAR
    band = _age_band(age)
    city = choice(rng, network.city_share, n)
    tier = np.array([c.tier for c in ref.CITIES])[city]
    return pl.DataFrame(
        {
            "index": np.arange(n, dtype=np.int64),
            "gender": np.where(rng.random(n) < 0.51, "M", "F"),
            "birth_day": birth,
            "age": age,
            "age_band": band,
            "city_index": city,
            "city_tier": tier,
            "city_name": pl.Series([c.name for c in ref.CITIES]).gather(city),
            "occupation_index": choice_rows(rng, OCCUPATION_BY_AGE[band]),
            "education_index": choice_rows(rng, EDUCATION_BY_AGE[band]),
            "marital_index": choice_rows(rng, MARITAL_BY_AGE[band]),
        }
    )


def _wealth(rng: np.random.Generator, frame: pl.DataFrame) -> pl.DataFrame:
    n = frame.height
    band = frame["age_band"].to_numpy()
    occupation = frame["occupation_index"].to_numpy()
    mean = (
        LN_AUM_MEAN
        + AGE_AUM_SHIFT[band]
        + TIER_AUM_SHIFT[frame["city_tier"].to_numpy()]
        + OCCUPATION_AUM_SHIFT[occupation]
        + 0.15 * (frame["education_index"].to_numpy() - 2)
    )
    ln_aum = rng.normal(mean, LN_AUM_SD)
    status_draw = rng.random(n)
    closed = status_draw < 0.01
    dormant = ~closed & (status_draw < 0.01 + np.where(ln_aum < 7.0, 0.25, 0.06))
    aum = np.exp(ln_aum)
    aum = np.where(dormant, rng.uniform(0, 300, n), np.where(closed, 0.0, aum))
    z_aum = (np.log1p(aum) - LN_AUM_MEAN) / LN_AUM_SD
    age = frame["age"].to_numpy()
    latent = 0.55 * z_aum + 0.12 * (frame["education_index"].to_numpy() - 2) - 0.02 * (age - 40) + rng.normal(0, 0.8, n)
    risk = 1 + np.searchsorted(RISK_CUTS, latent)
    risk = np.where(age >= 70, np.minimum(risk, 3), risk)
    credit = np.searchsorted(-CREDIT_CUTS, -(0.4 * z_aum + rng.normal(0, 1, n)))
    return frame.with_columns(
        aum_target=pl.Series(np.round(aum, 2)),
        z_aum=pl.Series(z_aum),
        risk=pl.Series(risk.astype(np.int64)),
        status=pl.Series(np.where(closed, "closed", np.where(dormant, "dormant", "active"))),
        credit_rating=pl.Series(CREDIT_GRADES).gather(credit),
        fraud_flag=pl.Series(rng.random(n) < 0.0015),
    )


def _relationships(rng: np.random.Generator, frame: pl.DataFrame, window: Window, network: Network) -> pl.DataFrame:
    n = frame.height
    birth = frame["birth_day"].to_numpy()
    adult_years = (window.last - birth) / _DAYS_PER_YEAR - 18
    tenure = np.minimum(rng.exponential(7.0, n), np.maximum(adult_years, 0.05))
    opened = window.last - np.floor(tenure * _DAYS_PER_YEAR).astype(np.int64)
    new = rng.random(n) < NEW_CUSTOMER_SHARE
    opened = np.where(new, rng.integers(window.first, window.last + 1, n), opened)
    city = frame["city_index"].to_numpy()
    sub = network.city_first_sub[city] + (rng.random(n) * network.city_subs[city]).astype(np.int64)
    managed = rng.random(n) < np.where(frame["aum_target"].to_numpy() >= 50_000, 0.9, 0.02)
    rm = network.sub_first_rm[sub] + (rng.random(n) * network.sub_rms[sub]).astype(np.int64)
    assessed = np.maximum(opened, window.last - rng.integers(0, 800, n))
    return frame.with_columns(
        open_day=pl.Series(opened),
        new_customer=pl.Series(new),
        branch_id=network.sub_ids.gather(sub),
        rm_id=pl.when(pl.Series(managed)).then(network.rm_ids.gather(rm)),
        risk_assessed_day=pl.Series(assessed),
    )


def _identifiers(seed: int, rng: np.random.Generator, frame: pl.DataFrame) -> pl.DataFrame:
    frame = frame.with_columns(_names(rng, frame))
    frame = frame.with_columns(id_card=_id_cards(rng, frame))
    n = frame.height
    index = frame["index"].to_numpy()
    prefixes = pl.Series([p for p, _ in ref.MOBILE_PREFIXES]).gather(
        choice(rng, [w for _, w in ref.MOBILE_PREFIXES], n)
    )
    multiplier, offset = _affine(seed, 10**8, "phone")
    suffix = pl.Series((index * multiplier + offset) % 10**8).cast(pl.String).str.zfill(8)
    own_phone = prefixes + suffix
    shares = rng.random(n) < 0.005
    owners = np.flatnonzero(~shares)  # a shared number belongs to someone who uses their own
    partner = owners[rng.integers(0, max(owners.size, 1), n) % max(owners.size, 1)] if owners.size else index
    phone = np.where(shares, own_phone.to_numpy()[partner], own_phone.to_numpy())
    user_multiplier, user_offset = _affine(seed, 9 * 10**9, "user")
    return frame.with_columns(
        phone=pl.Series(phone),
        phone_shared_with=pl.when(pl.Series(shares)).then(pl.Series(partner)),
        user_id="U" + pl.Series((index * user_multiplier + user_offset) % (9 * 10**9) + 10**9).cast(pl.String),
        email=_emails(rng, frame),
        cust_no="C" + pl.col("index").add(1).cast(pl.String).str.zfill(10),
    )


def _affine(seed: int, modulus: int, name: str) -> tuple[int, int]:
    """A multiplier coprime to `modulus` (a permutation of 0 … modulus-1) and an offset, from the seed."""
    rng = stream(seed, "affine-" + name)
    while True:
        multiplier = int(rng.integers(modulus // 3, modulus - 1))
        if np.gcd(multiplier, modulus) == 1:
            return multiplier, int(rng.integers(0, modulus))


def _names(rng: np.random.Generator, frame: pl.DataFrame) -> list[pl.Series]:
    n = frame.height
    family = choice(rng, [w for _, _, w in ref.FAMILY_NAMES], n)
    male = frame["gender"].to_numpy() == "M"
    pool = ref.GIVEN_FEMALE + ref.GIVEN_MALE
    size = np.where(male, len(ref.GIVEN_MALE), len(ref.GIVEN_FEMALE))
    base = np.where(male, len(ref.GIVEN_FEMALE), 0)
    first, second = (base + rng.integers(0, 10_000, n) % size for _ in range(2))
    chars = pl.Series([c for c, _ in pool])
    given = pl.select(
        pl.when(pl.Series(rng.random(n) < 0.75))
        .then(chars.gather(first) + chars.gather(second))
        .otherwise(chars.gather(first))
    ).to_series()
    family_names = pl.Series([f for f, _, _ in ref.FAMILY_NAMES]).gather(family)
    pinyin = pl.Series([p for _, p, _ in ref.FAMILY_NAMES]).gather(family) + pl.Series([p for _, p in pool]).gather(
        first
    )
    return [family_names.alias("family_name"), (family_names + given).alias("name"), pinyin.alias("pinyin")]


def _yyyymmdd(days: np.ndarray) -> np.ndarray:
    moments = days.astype("datetime64[D]")
    years = moments.astype("datetime64[Y]")
    months = moments.astype("datetime64[M]")
    year = years.astype(np.int64) + 1970
    month = (months - years.astype("datetime64[M]")).astype(np.int64) + 1
    day = (moments - months.astype("datetime64[D]")).astype(np.int64) + 1
    return np.asarray(year * 10_000 + month * 100 + day)


def _id_cards(rng: np.random.Generator, frame: pl.DataFrame) -> pl.Series:
    """GB 11643-1999 numbers: region (birthplace), birth date, a sequence whose parity is the gender, check digit."""
    n = frame.height
    codes = np.array([int(c.code) for c in ref.CITIES])
    elsewhere = rng.random(n) < 0.25
    birthplace = np.where(elsewhere, rng.integers(0, len(codes), n), frame["city_index"].to_numpy())
    region = codes[birthplace] * 100 + np.array([int(d) for d in ref.DISTRICT_SUFFIXES])[rng.integers(0, 5, n)]
    birth_digits = _yyyymmdd(frame["birth_day"].to_numpy())
    male = (frame["gender"].to_numpy() == "M").astype(np.int64)
    sequence = _unique_sequences(rng, region, birth_digits, male)
    first17 = region * 10**11 + birth_digits * 1000 + sequence * 2 + male
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    digits = (first17[:, None] // 10 ** np.arange(16, -1, -1)) % 10
    check = pl.Series(list("10X98765432")).gather((digits @ weights) % 11)
    return pl.Series(first17).cast(pl.String) + check


def _unique_sequences(rng: np.random.Generator, region: np.ndarray, birth: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Sequence numbers 0 … 499 that make (region, birth date, gender, sequence) unique."""
    start = rng.integers(0, 500, len(region))
    group = pl.Series((region * 10**8 + birth) * 2 + male)
    ranked = pl.DataFrame({"group": group, "start": start}).select(
        (pl.col("start").min().over("group") + pl.int_range(pl.len()).over("group")) % 500
    )
    return ranked.to_series().to_numpy()


def _emails(rng: np.random.Generator, frame: pl.DataFrame) -> pl.Series:
    n = frame.height
    has_email = rng.random(n) < np.select(
        [frame["age"].to_numpy() < 35, frame["age"].to_numpy() < 55], [0.55, 0.35], 0.12
    )
    domain = pl.Series([d for d, _ in ref.EMAIL_DOMAINS]).gather(choice(rng, [w for _, w in ref.EMAIL_DOMAINS], n))
    number = frame["index"] + 10_000
    year = pl.Series(_yyyymmdd(frame["birth_day"].to_numpy()) // 10_000 % 100).cast(pl.String).str.zfill(2)
    local = pl.select(
        pl.when(domain == "qq.com")
        .then((number * 7 + 100_000).cast(pl.String))
        .otherwise(frame["pinyin"] + year + "." + number.cast(pl.String))
    ).to_series()
    return pl.select(pl.when(pl.Series(has_email)).then(local + "@" + domain)).to_series()
