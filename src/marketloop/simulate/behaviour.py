"""Behaviour events: session steps with identifiers, properties and context attached, plus `identify`s.

Takes the sessions (`sessions.organic_sessions`, `sessions.action_sessions`),
their exploded steps (`sessions.explode`) and the chunk's digital identifiers
(`identities`), and produces the event rows `records.encode` writes:

* every event's `context.channel` is its platform (app, mini_program, wechat, h5);
* app events carry the install's anonymous id and `context.device`
  (`id`, `type`); after the session's `login` step, the login id too;
* mini-program and official-account events carry the openid of that appid as
  anonymous id and `context.wechat` (`appid`, `openid`, `unionid`); bound
  mini-program users are logged in; H5 events carry the cookie id;
* properties: `channel` (app, mini_program, wechat, h5), `platform` (ios,
  android, harmonyos, wechat, web), `page`, `product_code`, `amount`,
  `holding_id` (the holding a purchase created), `counterparty_type`,
  `method` (login), `article_id` / `topic` / `read_seconds` (articles),
  `scene` (mini-program);
* `identify` (profile_op set, `traits.cust_no`, plus `traits.wechat_unionid`
  on WeChat) at the first login on each install, the first visit of a bound
  mini-program user or follower in the window, and every H5 login.

Identity and context are worked out once per session, then gathered onto
its events; JSON text is built with `concat_str(ignore_nulls=True)`, so an
absent field costs nothing.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from marketloop.simulate import reference as ref
from marketloop.simulate.identities import AppIds, DigitalIds
from marketloop.simulate.sessions import session_starts

APP_TEMPLATES = ("browse", "wealth", "fund", "account", "buy_wealth", "buy_fund", "transfer", "activate")
LIBRARY = '{"library":{"name":"marketloop-simulator","version":"1"}'
LOGIN_METHODS = ("password", "face_id", "fingerprint", "sms_code")
MP_SCENES = (1001, 1007, 1008, 1035, 1089)  # WeChat scene values: chat list, shared card, group card, OA menu, recent
AMOUNT_EVENTS = ("purchase", "transfer_out", "yield_calculator_used")


def _field(key: str, value: pl.Expr, *, number: bool = False) -> pl.Expr:
    """`,"key":"value"` (or a bare number), null when the value is null."""
    if number:
        return pl.concat_str([pl.lit(f',"{key}":'), value.cast(pl.String)])
    return pl.concat_str([pl.lit(f',"{key}":"'), value, pl.lit('"')])


def events(
    rng: np.random.Generator,
    population: pl.DataFrame,
    visits: pl.DataFrame,
    steps: pl.DataFrame,
    ids: DigitalIds,
    apps: AppIds,
) -> pl.DataFrame:
    """Event rows (type, event, ts, received, anonymous_id, user_id, properties, traits, context), by time."""
    who = _session_identity(rng, population, visits, ids, apps)
    located = _locate(steps, visits, who)
    tracks = located.select(
        "event",
        "ts",
        "anonymous_id",
        "user_id",
        "context",
        type=pl.lit("track"),
        properties=_properties(rng, located),
        traits=pl.lit(None, pl.String),
    )
    rows = pl.concat([tracks, _identifies(located).select(tracks.columns)], how="vertical_relaxed")
    rows = rows.sort("ts", maintain_order=True)
    latency = np.round(rng.exponential(400_000, rows.height)).astype(np.int64) + 50_000
    return rows.with_columns(received=pl.col("ts") + pl.Series(latency))


def _session_identity(
    rng: np.random.Generator, population: pl.DataFrame, visits: pl.DataFrame, ids: DigitalIds, apps: AppIds
) -> pl.DataFrame:
    """Per session: channel, anonymous id, platform, context JSON, login id, whether always logged in."""
    template = pl.col("template")
    frame = visits.select("row", channel=pl.when(template.is_in(APP_TEMPLATES)).then(pl.lit("app")).otherwise(template))
    installs = ids.devices.group_by("row").agg(installs=pl.len())
    main = rng.random(frame.height) < 0.8
    other = rng.random(frame.height)
    frame = frame.join(installs, on="row", how="left", maintain_order="left").with_columns(
        slot=pl.when(pl.Series(main)).then(0).otherwise((pl.Series(other) * pl.col("installs")).floor().cast(pl.Int64))
    )
    frame = (
        frame.join(ids.devices.drop("index"), on=["row", "slot"], how="left", maintain_order="left")
        .join(ids.wechat.drop("index"), on="row", how="left", maintain_order="left")
        .join(ids.cookies.drop("index"), on="row", how="left", maintain_order="left")
    )
    channel = pl.col("channel")
    is_app, is_mp, is_oa = (channel == c for c in ("app", "mini_program", "wechat"))
    openid = pl.when(is_mp).then("mp_openid").when(is_oa).then("oa_openid")
    appid = pl.when(is_mp).then(pl.lit(apps.mini_program)).when(is_oa).then(pl.lit(apps.official_account))
    platform = pl.when(is_app).then("platform").when(is_mp | is_oa).then(pl.lit("wechat")).otherwise(pl.lit("web"))
    device = pl.when(is_app).then(
        pl.concat_str([pl.lit(',"device":{"id":"'), "device_id", pl.lit('","type":"'), "platform", pl.lit('"}')])
    )
    wechat = pl.concat_str(
        [
            pl.lit(',"wechat":{"appid":"'),
            appid,
            pl.lit('","openid":"'),
            openid,
            pl.lit('","unionid":"'),
            "unionid",
            pl.lit('"}'),
        ]
    )
    return frame.select(
        "row",
        "slot",
        "channel",
        "unionid",
        anonymous_id=pl.when(is_app).then("anonymous_id").when(is_mp | is_oa).then(openid).otherwise("cookie_id"),
        platform=platform,
        # `context.channel` names the platform, as the bank's SDK configuration does: the profile's
        # last-seen-by-platform and app-login figures read it.
        context=pl.concat_str(
            [pl.lit(LIBRARY), pl.lit(',"channel":"'), channel, pl.lit('"'), device, wechat, pl.lit("}")],
            ignore_nulls=True,
        ),
        always_logged_in=is_mp & pl.col("mp_bound").fill_null(False),
        bound=(is_mp & pl.col("mp_bound").fill_null(False)) | (is_oa & pl.col("oa_bound").fill_null(False)),
        login_id=population["user_id"].gather(frame["row"]),
        cust_no=population["cust_no"].gather(frame["row"]),
    )


def _locate(steps: pl.DataFrame, visits: pl.DataFrame, who: pl.DataFrame) -> pl.DataFrame:
    """Steps with their session's identity and time, and the login id once logged in."""
    session = steps["session"]
    is_login = (steps["event"] == "login").to_numpy().astype(np.int64)
    logins = np.cumsum(is_login)
    before = (logins - is_login)[session_starts(session.to_numpy())] if steps.height else logins
    logged_in = pl.Series((logins - before) > 0)
    gathered = who.select(pl.all().gather(session))
    attributes = visits.select(pl.all().gather(session)).select(
        session_ts="ts", product="product", other="other", amount="amount", holding_id="holding_id"
    )
    located = pl.concat([steps, gathered, attributes], how="horizontal")
    return located.with_columns(
        ts=pl.col("session_ts") + pl.col("offset_us"),
        user_id=pl.when(pl.col("always_logged_in") | (logged_in & (pl.col("channel") != "wechat"))).then("login_id"),
        product_code=pl.when(pl.col("source") == "product")
        .then("product")
        .when(pl.col("source") == "other")
        .then("other"),
    )


def _properties(rng: np.random.Generator, located: pl.DataFrame) -> pl.Expr:
    n = located.height
    event = pl.col("event")
    planned = pl.Series(np.round(rng.uniform(1, 50, n)) * 1_000)
    article = event == "wechat_article_read"
    topics = pl.Series(ref.WECHAT_ARTICLE_TOPICS).gather(rng.integers(0, len(ref.WECHAT_ARTICLE_TOPICS), n))
    parts = [
        pl.lit('{"channel":"'),
        pl.col("channel"),
        pl.lit('","platform":"'),
        pl.col("platform"),
        pl.lit('"'),
        _field("page", pl.col("page")),
        _field("product_code", pl.col("product_code")),
        _field("amount", pl.when(event.is_in(AMOUNT_EVENTS)).then(pl.coalesce("amount", planned)), number=True),
        _field("holding_id", pl.when(event == "purchase").then("holding_id")),
        _field("counterparty_type", pl.when(event == "transfer_out").then(pl.lit("other_bank"))),
        _field("method", pl.when(event == "login").then(pl.Series(LOGIN_METHODS).gather(rng.integers(0, 4, n)))),
        _field("article_id", pl.when(article).then(pl.Series(rng.integers(10_000, 99_999, n)).cast(pl.String))),
        _field("topic", pl.when(article).then(topics)),
        _field(
            "read_seconds", pl.when(article).then(pl.Series(rng.exponential(60, n).astype(np.int64) + 3)), number=True
        ),
        _field("scene", pl.when(event == "mini_program_visit").then(pl.Series(rng.choice(MP_SCENES, n))), number=True),
        pl.lit("}"),
    ]
    return pl.concat_str(parts, ignore_nulls=True)


def _identifies(located: pl.DataFrame) -> pl.DataFrame:
    """`identify` events: first login per install, every H5 login, first visit of bound WeChat users."""
    channel, event = pl.col("channel"), pl.col("event")
    logins = located.filter((event == "login") & channel.is_in(["app", "h5"]))
    app_first = logins.filter(channel == "app").sort("ts").unique(["row", "slot"], keep="first", maintain_order=True)
    wechat_first = (
        located.filter(pl.col("bound") & (pl.col("step") == 0))
        .sort("ts")
        .unique(["row", "channel"], keep="first", maintain_order=True)
    )
    chosen = pl.concat([app_first, logins.filter(channel == "h5"), wechat_first])
    traits = pl.concat_str(
        [pl.lit('{"cust_no":"'), "cust_no", pl.lit('"'), _field("wechat_unionid", pl.col("unionid")), pl.lit("}")],
        ignore_nulls=True,
    )
    return chosen.select(
        "anonymous_id",
        "context",
        event=pl.lit(None, pl.String),
        ts=pl.col("ts") + 1_000,
        user_id="login_id",
        type=pl.lit("identify"),
        properties=pl.lit(None, pl.String),
        traits=pl.when(channel.is_in(["mini_program", "wechat"]))
        .then(traits)
        .otherwise(pl.concat_str([pl.lit('{"cust_no":"'), "cust_no", pl.lit('"}')])),
    )
