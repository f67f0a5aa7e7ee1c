"""The DuckDB SQL that computes `customer_profile` from `ProfileRules`.

One aggregate per source table (holdings, transactions, events, payroll,
RM assignments), each a single vectorised pass grouped by customer, left-joined
onto `customers`; a customer without rows in a source gets each figure's
default (0 for money and counts, NULL for dates). Rules arrive as data and
are printed here as SQL literals; nothing in this module decides what a
figure means.

Events belong to a customer by `user_id` = cust_no, or by an `anonymous_id`
that some event carried together with a `user_id` (pre-login browsing on the
same device); see `owned_events_sql`. The OneID engine's `events_resolved`
will replace this linking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from marketloop.ports.profiles import ProfileRules

FAR_FUTURE = "DATE '9999-12-31'"
ZERO_MONEY = "CAST(0 AS DECIMAL(18, 2))"


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def literal_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")" if values else "(NULL)"


def date_literal(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def ts_literal(moment: datetime) -> str:
    return f"TIMESTAMPTZ '{moment.isoformat()}'"


def contains_any(expr: str, markers: tuple[str, ...]) -> str:
    return "(" + (" OR ".join(f"contains({expr}, {literal(m)})" for m in markers) or "false") + ")"


@dataclass(frozen=True, kw_only=True)
class Figure:
    """One output column of an aggregate: its expression over the grouped rows and its default."""

    name: str
    expr: str
    default: str = "NULL"


def money(name: str, condition: str, value: str = "balance") -> Figure:
    return Figure(name=name, expr=f"CAST(sum({value}) FILTER ({condition}) AS DECIMAL(18, 2))", default=ZERO_MONEY)


def counted(name: str, condition: str) -> Figure:
    return Figure(name=name, expr=f"count(*) FILTER ({condition})", default="0")


@dataclass(frozen=True, kw_only=True)
class Aggregate:
    """A per-customer aggregate: `figures` grouped by cust_no over `source` (a FROM … WHERE …)."""

    alias: str
    source: str
    figures: tuple[Figure, ...]

    def sql(self) -> str:
        columns = ", ".join(f"{f.expr} AS {f.name}" for f in self.figures)
        return f"SELECT cust_no, {columns} FROM {self.source} GROUP BY cust_no"

    def columns(self) -> str:
        return ", ".join(f"coalesce({self.alias}.{f.name}, {f.default}) AS {f.name}" for f in self.figures)


def _in_force(alias: str, day: str) -> str:
    return f"({alias}.valid_from <= {day} AND coalesce({alias}.valid_to, {FAR_FUTURE}) >= {day})"


def _only(column: str, only: str | None) -> str:
    return f" AND {column} = {literal(only)}" if only is not None else ""


def holdings(rules: ProfileRules, as_of: date, only: str | None) -> Aggregate:
    """Assets and liabilities from the balance intervals in force on `as_of` (and `trend_days` before)."""
    day, ago = date_literal(as_of), date_literal(as_of - timedelta(days=rules.trend_days))
    assets = f"product_type IN {literal_list(rules.asset_types)}"
    markers = rules.mortgage_markers
    mortgage = f"({contains_any('lower(p.product_code)', markers)} OR {contains_any('lower(p.name)', markers)})"
    rates = " ".join(f"WHEN {literal(t)} THEN {float(r)!r}" for t, r in rules.contribution_rates.items())
    maturing = tuple(
        money(
            f"{kind}_maturing_{n}d",
            f"now AND product_type = {literal(kind)} AND maturity_date BETWEEN {day} "
            f"AND {date_literal(as_of + timedelta(days=n))}",
        )
        for kind in ("wealth", "deposit")
        for n in rules.maturity_windows_days
    )
    figures = (
        money("aum", f"now AND {assets}"),
        money(f"aum_{rules.trend_days}d_ago", f"ago AND {assets}"),
        *(money(f"{t}_balance", f"now AND product_type = {literal(t)}") for t in rules.asset_types),
        *maturing,
        Figure(
            name="next_maturity_date", expr=f"min(maturity_date) FILTER (now AND {assets} AND maturity_date >= {day})"
        ),
        money("loan_balance", "now AND product_type = 'loan'"),
        money("mortgage_balance", "now AND mortgage"),
        money("credit_card_balance", "now AND product_type = 'credit_card'"),
        money("credit_card_limit", "now AND product_type = 'credit_card'", value="credit_limit"),
        counted("products_held", "now AND balance > 0"),  # holdings in force with a balance
        money("contribution", "now", value=f"balance * CASE product_type {rates} ELSE 0 END"),
    )
    source = f"""(
        SELECT h.cust_no, h.balance, h.maturity_date, h.credit_limit, h.product_code, p.product_type,
               {_in_force("h", day)} AS now, {_in_force("h", ago)} AS ago,
               (p.product_type = 'loan' AND {mortgage}) AS mortgage
        FROM holdings h JOIN products p USING (product_code)
        WHERE h.valid_from <= {day} AND coalesce(h.valid_to, {FAR_FUTURE}) >= {ago}{_only("h.cust_no", only)}
    )"""
    return Aggregate(alias="h", source=source, figures=figures)


def transactions(rules: ProfileRules, as_of: datetime, only: str | None) -> Aggregate:
    """Inflows, outflows, salary, transfers to other banks and the channel mix over the two windows."""
    s, lw = rules.short_window_days, rules.long_window_days
    recent = f"ts > {ts_literal(as_of - timedelta(days=s))}"
    salary = "direction = 'in' AND (category = 'salary' OR counterparty_type = 'employer')"
    to_other_bank = "direction = 'out' AND counterparty_type = 'other_bank'"
    figures = (
        money(f"inflow_{s}d", f"direction = 'in' AND {recent}", value="amount"),
        money(f"outflow_{s}d", f"direction = 'out' AND {recent}", value="amount"),
        counted(f"txn_count_{s}d", recent),
        money(f"inflow_{lw}d", "direction = 'in'", value="amount"),
        money(f"outflow_{lw}d", "direction = 'out'", value="amount"),
        counted(f"txn_count_{lw}d", "true"),
        money(f"salary_{s}d", f"{salary} AND {recent}", value="amount"),
        Figure(name="last_salary_at", expr=f"max(ts) FILTER ({salary})"),
        money(f"other_bank_out_{s}d", f"{to_other_bank} AND {recent}", value="amount"),
        counted(f"other_bank_out_count_{s}d", f"{to_other_bank} AND {recent}"),
        *(counted(f"txn_{lw}d_{channel}", f"channel = {literal(channel)}") for channel in rules.channels),
    )
    window = f"ts > {ts_literal(as_of - timedelta(days=lw))} AND ts <= {ts_literal(as_of)}"
    source = f"transactions WHERE {window}{_only('cust_no', only)}"
    return Aggregate(alias="t", source=source, figures=figures)


def behaviour(rules: ProfileRules, as_of: datetime, events: str) -> Aggregate:
    """Last seen, logins, active days, last seen per platform and page views by subject, from `events`.

    `events` carries the per-event flags of `event_flags` (login, views by subject, UTC day number).
    """
    s = rules.short_window_days
    recent = f"ts > {ts_literal(as_of - timedelta(days=s))}"
    # Active days without count(DISTINCT …), which DuckDB plans as a separate pass: one bit per UTC day back,
    # clamped because the argument is computed for rows the FILTER then drops.
    if s > 120:
        raise ValueError("short_window_days must be at most 120 (active days are counted in a 128-bit mask)")
    today = int(as_of.timestamp()) // 86_400
    day_bit = f"CAST(1 AS HUGEINT) << least(greatest({today} - utc_day, 0), 126)"
    figures = (
        Figure(name="last_seen_at", expr="max(ts)"),
        Figure(name="last_event", expr="arg_max(event, ts)"),
        counted(f"events_{s}d", recent),
        counted(f"logins_{s}d", f"{recent} AND is_login"),
        counted(f"app_logins_{s}d", f"{recent} AND is_login AND platform = 'app'"),
        Figure(name=f"active_days_{s}d", expr=f"bit_count(bit_or({day_bit}) FILTER ({recent}))", default="0"),
        *(
            Figure(name=f"last_{rule.platform}_at", expr=f"max(ts) FILTER (platform = {literal(rule.platform)})")
            for rule in rules.platforms
        ),
        *(counted(f"{subject}_page_views_{s}d", f"{recent} AND is_{subject}_view") for subject in rules.view_markers),
    )
    return Aggregate(alias="beh", source=f"{events} WHERE ts <= {ts_literal(as_of)}", figures=figures)


def event_flags(rules: ProfileRules) -> str:
    """Per-event columns the behaviour aggregate counts, worked out once per event (over `name` = lower(event))."""
    is_view = "(type IN ('page', 'screen') OR contains(name, 'view'))"
    views = "".join(
        f", coalesce({is_view} AND {contains_any('name', markers)}, false) AS is_{subject}_view"
        for subject, markers in rules.view_markers.items()
    )
    return (
        f"coalesce(name IN {literal_list(rules.login_events)}, false) AS is_login{views}, "
        "CAST(floor(epoch(ts) / 86400) AS INTEGER) AS utc_day"
    )


def platform_case(rules: ProfileRules, raw: str) -> str:
    """The platform (app, h5, …) whose markers `raw`, the SDK's own lower-cased name, contains; else NULL."""
    cases = " ".join(
        f"WHEN {contains_any(raw, rule.markers)} THEN {literal(rule.platform)}" for rule in rules.platforms
    )
    return f"CASE {cases} ELSE NULL END" if cases else "CAST(NULL AS VARCHAR)"


# What an event's SDK says about its platform, in order: context.platform, context.channel, the
# Sensors `$lib`, the Segment library name, the OS name (all five from one parse of the JSON).
_PLATFORM_PATHS = ("$.platform", "$.channel", '$.library."$lib"', "$.library.name", "$.os.name")
PLATFORM_NAMES = "json_extract_string(e.context, [" + ", ".join(literal(p) for p in _PLATFORM_PATHS) + "])"


def raw_platform(names: str) -> str:
    """The first platform name of the list column `names` (a `PLATFORM_NAMES`), lower-cased; '' when none."""
    return "lower(coalesce(" + ", ".join(f"{names}[{i}]" for i in range(1, len(_PLATFORM_PATHS) + 1)) + ", ''))"


CUSTOMER_ONE_IDS = """
    SELECT i.id_value AS cust_no, coalesce(r.to_one_id, i.one_id) AS one_id
    FROM identities i LEFT JOIN identity_redirects r ON r.from_one_id = i.one_id
    WHERE i.id_type = 'cust_no'
"""


def owned_events_sql(rules: ProfileRules, watermark: int, *, one_id: bool, only: str | None = None) -> str:
    """Events with `load_seq` ≤ `watermark`, each with the cust_no it belongs to (customers' events only),
    its platform and the flags of `event_flags`.

    With OneID (`one_id`): the customer whose cust_no has the event's OneID in
    `events_resolved`. Events without one (loaded before OneID was wired, or
    of a person not linked to a cust_no) fall back to `user_id` = cust_no, or an
    `anonymous_id` some event carried with a `user_id`.
    """
    if one_id:
        relation, unresolved = "events_resolved", "e.one_id IS NULL AND "
        linked = f"LEFT JOIN ({CUSTOMER_ONE_IDS}) co ON co.one_id = e.one_id"
        owner = "coalesce(co.cust_no, e.user_id, a.owner)"
    else:
        relation, unresolved, linked, owner = "events", "", "", "coalesce(e.user_id, a.owner)"
    return f"""
    WITH anon_owner AS (
        SELECT anonymous_id, min(user_id) AS owner FROM events
        WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL AND load_seq <= {watermark}
        GROUP BY anonymous_id
    ), owned AS (
        SELECT {owner} AS cust_no, e.anonymous_id, e.timestamp AS ts, e.message_id,
               e.load_seq, e.type, e.event, lower(e.event) AS name, e.source, e.properties,
               {PLATFORM_NAMES} AS platform_names
        FROM {relation} e {linked}
            LEFT JOIN anon_owner a ON {unresolved}e.user_id IS NULL AND e.anonymous_id = a.anonymous_id
        WHERE e.load_seq <= {watermark}
    )
    SELECT cust_no, anonymous_id, ts, message_id, load_seq, type, event, source, properties,
           {platform_case(rules, raw_platform("platform_names"))} AS platform, {event_flags(rules)}
    FROM owned WHERE cust_no IN (SELECT cust_no FROM customers){_only("cust_no", only)}
    """


def _natural_columns(day: str) -> str:
    age = (
        f"(year({day}) - year(c.birth_date) - CASE WHEN month({day}) * 100 + day({day}) "
        "< month(c.birth_date) * 100 + day(c.birth_date) THEN 1 ELSE 0 END)"
    )
    tenure = (
        f"((year({day}) - year(c.open_date)) * 12 + month({day}) - month(c.open_date) "
        f"- CASE WHEN day({day}) < day(c.open_date) THEN 1 ELSE 0 END)"
    )
    birthday = (
        f"CASE WHEN CAST(c.birth_date + to_years({age}) AS DATE) = {day} THEN 0 "
        f"ELSE date_diff('day', {day}, CAST(c.birth_date + to_years({age} + 1) AS DATE)) END"
    )
    return f"""
        c.cust_no, c.name_enc, c.name_prefix, c.phone_enc, c.phone_hash, c.gender, c.birth_date,
        {age} AS age, {birthday} AS birthday_in_days, c.city, c.city_tier, c.occupation, c.marital_status,
        c.education, c.open_date, {tenure} AS tenure_months, c.status, c.branch_id, b.name AS branch_name,
        coalesce(ra.rm_id, c.rm_id) AS rm_id, rm.name AS rm_name
    """


def _risk_columns(rules: ProfileRules, day: str) -> str:
    expired = (
        f"(c.risk_assessed_at IS NULL OR date_diff('day', c.risk_assessed_at, {day}) "
        f"> {rules.risk_assessment_valid_days})"
    )
    return f"""
        c.risk_tolerance, c.risk_assessed_at, {expired} AS risk_assessment_expired,
        c.credit_rating, coalesce(c.fraud_flag, false) AS fraud_flag
    """


def _derived_columns(rules: ProfileRules) -> str:
    ago = f"aum_{rules.trend_days}d_ago"
    tiers = " ".join(f"WHEN coalesce(h.aum, 0) >= {int(t)} THEN {literal(tier)}" for t, tier in rules.vip_thresholds)
    lowest = rules.vip_thresholds[-1][1] if rules.vip_thresholds else "standard"
    return f"""
        CASE WHEN h.{ago} > 0 THEN CAST(round((h.aum - h.{ago}) / h.{ago} * 100, 2) AS DOUBLE) END AS aum_trend_pct,
        CAST(coalesce(h.loan_balance, 0) + coalesce(h.credit_card_balance, 0) AS DECIMAL(18, 2)) AS liability_total,
        CASE WHEN h.credit_card_limit > 0
             THEN CAST(round(h.credit_card_balance / h.credit_card_limit, 4) AS DOUBLE) END AS credit_card_utilisation,
        c.vip_level, CASE {tiers} ELSE {literal(lowest)} END AS vip_tier
    """


def profile_select_sql(
    rules: ProfileRules, as_of: datetime, events: str, *, one_id: bool, only: str | None = None
) -> str:
    """One row per customer with every topic's columns; `events` names a relation shaped like `owned_events_sql`.

    With OneID (`one_id`), each customer's OneID is the `one_id` column (else NULL).
    """
    one_ids = CUSTOMER_ONE_IDS if one_id else "SELECT NULL AS cust_no, CAST(NULL AS VARCHAR) AS one_id WHERE false"
    day = date_literal(as_of.date())
    h, t, beh = holdings(rules, as_of.date(), only), transactions(rules, as_of, only), behaviour(rules, as_of, events)
    return f"""
    WITH h AS ({h.sql()}), t AS ({t.sql()}), beh AS ({beh.sql()}),
         anon AS (SELECT cust_no, list(DISTINCT anonymous_id ORDER BY anonymous_id)[1:20] AS anonymous_ids
                  FROM {events} WHERE anonymous_id IS NOT NULL GROUP BY cust_no),
         ra AS (SELECT cust_no, arg_max(rm_id, valid_from) AS rm_id FROM rm_assignments r
                WHERE {_in_force("r", day)} GROUP BY cust_no),
         pay AS (SELECT cust_no, arg_max(employer_name, start_date) AS employer_name FROM payroll
                 WHERE start_date <= {day} AND coalesce(end_date, {FAR_FUTURE}) >= {day} GROUP BY cust_no),
         co AS ({one_ids})
    SELECT {_natural_columns(day)}, {h.columns()}, {t.columns()},
        pay.cust_no IS NOT NULL AS payroll_customer, pay.employer_name AS payroll_employer,
        {_risk_columns(rules, day)}, {beh.columns()}, {_derived_columns(rules)},
        CAST(NULL AS DOUBLE) AS clv,
        coalesce(anon.anonymous_ids, []) AS anonymous_ids, co.one_id, {ts_literal(as_of)} AS profile_as_of
    FROM customers c
        LEFT JOIN h USING (cust_no) LEFT JOIN t USING (cust_no) LEFT JOIN beh USING (cust_no)
        LEFT JOIN anon USING (cust_no) LEFT JOIN ra USING (cust_no) LEFT JOIN pay USING (cust_no)
        LEFT JOIN co USING (cust_no)
        LEFT JOIN branches b ON b.branch_id = c.branch_id
        LEFT JOIN relationship_managers rm ON rm.rm_id = coalesce(ra.rm_id, c.rm_id)
    WHERE true{_only("c.cust_no", only)}
    """
