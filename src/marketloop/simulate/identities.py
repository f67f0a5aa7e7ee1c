"""Each customer's digital identifiers: app installs and devices, WeChat openids and unionid, H5 cookies.

This is what OneID has to stitch together. A mobile-banking user has one
to three app installs (a new phone, a tablet), each with a device id and an
SDK anonymous id; WeChat gives a different openid per official account or
mini-program (appid) and one unionid across the bank's open-platform
account; H5 pages set a cookie id. Only some of these ever meet the login
id (`user_id`) in one event: followers who bound their account (40 %),
mini-program users who logged in (70 %), H5 visitors who logged in. The
`ground_truth/identities.parquet` file lists them all with their owner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from marketloop.simulate.streams import choice, hex_ids, stream, uuid_ids, wechat_ids

PLATFORMS = ("ios", "android", "harmonyos")
PLATFORM_WEIGHTS = (0.4, 0.53, 0.07)
DEVICE_COUNT_WEIGHTS = (0.8, 0.17, 0.03)


@dataclass(frozen=True, kw_only=True)
class AppIds:
    """The bank's WeChat official account and mini-program appids (fixed for a seed)."""

    official_account: str
    mini_program: str


def app_ids(seed: int) -> AppIds:
    rng = stream(seed, "appids")
    official, mini = hex_ids(rng, 2, 16).to_list()
    return AppIds(official_account="wx" + official, mini_program="wx" + mini)


@dataclass(frozen=True, kw_only=True)
class DigitalIds:
    devices: pl.DataFrame  # index, row, slot, anonymous_id, device_id, platform
    wechat: pl.DataFrame  # index, row, unionid, oa_openid (followers), mp_openid (mini-program users), bound flags
    cookies: pl.DataFrame  # index, row, cookie_id


def digital_ids(rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame) -> DigitalIds:
    return DigitalIds(
        devices=_devices(rng, population, truth),
        wechat=_wechat(rng, population, truth),
        cookies=_cookies(rng, population, truth),
    )


def _devices(rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    users = np.flatnonzero(truth["app_user"].to_numpy())
    counts = 1 + choice(rng, DEVICE_COUNT_WEIGHTS, users.size)
    row = np.repeat(users, counts)
    slot = np.arange(row.size) - np.repeat(np.cumsum(counts) - counts, counts)
    main_platform = choice(rng, PLATFORM_WEIGHTS, users.size)
    platform = np.where(
        rng.random(row.size) < 0.8, np.repeat(main_platform, counts), choice(rng, PLATFORM_WEIGHTS, row.size)
    )
    ios = platform == 0
    device_id = pl.select(
        pl.when(pl.Series(ios)).then(uuid_ids(rng, row.size).str.to_uppercase()).otherwise(hex_ids(rng, row.size, 16))
    ).to_series()
    return pl.DataFrame(
        {
            "index": population["index"].to_numpy()[row],
            "row": row,
            "slot": slot,
            "anonymous_id": uuid_ids(rng, row.size),
            "device_id": device_id,
            "platform": np.array(PLATFORMS)[platform],
        }
    )


def _wechat(rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    follower = truth["wechat_follower"].to_numpy()
    mini = truth["mini_program_user"].to_numpy()
    row = np.flatnonzero(follower | mini)
    return pl.DataFrame(
        {
            "index": population["index"].to_numpy()[row],
            "row": row,
            "unionid": wechat_ids(rng, row.size),
            "oa_openid": pl.select(pl.when(pl.Series(follower[row])).then(wechat_ids(rng, row.size))).to_series(),
            "mp_openid": pl.select(pl.when(pl.Series(mini[row])).then(wechat_ids(rng, row.size))).to_series(),
            "oa_bound": follower[row] & (rng.random(row.size) < 0.4),
            "mp_bound": mini[row] & (rng.random(row.size) < 0.7),
        }
    )


def _cookies(rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    row = np.flatnonzero(truth["h5_visitor"].to_numpy())
    return pl.DataFrame(
        {"index": population["index"].to_numpy()[row], "row": row, "cookie_id": uuid_ids(rng, row.size)}
    )


def truth_rows(ids: DigitalIds, population: pl.DataFrame, truth: pl.DataFrame, apps: AppIds) -> pl.DataFrame:
    """Every identifier of every customer of the chunk: cust_no, kind, value, appid."""
    cust = population.select("row", "cust_no")
    app_user = population.select("row", "cust_no", value="user_id").filter(truth["app_user"])
    wechat = ids.wechat.join(cust, on="row")
    parts = [
        population.select("cust_no", kind=pl.lit("cust_no"), value="cust_no", appid=pl.lit(None, pl.String)),
        app_user.select("cust_no", kind=pl.lit("user_id"), value="value", appid=pl.lit(None, pl.String)),
        _kind(ids.devices.join(cust, on="row"), "device_id", "device_id", None),
        _kind(ids.devices.join(cust, on="row"), "anonymous_id", "anonymous_id", None),
        _kind(wechat, "unionid", "unionid", None),
        _kind(wechat, "openid", "oa_openid", apps.official_account),
        _kind(wechat, "openid", "mp_openid", apps.mini_program),
        _kind(ids.cookies.join(cust, on="row"), "anonymous_id", "cookie_id", None),
    ]
    return pl.concat(parts).filter(pl.col("value").is_not_null())


def _kind(frame: pl.DataFrame, kind: str, column: str, appid: str | None) -> pl.DataFrame:
    return frame.select("cust_no", kind=pl.lit(kind), value=column, appid=pl.lit(appid, pl.String))
