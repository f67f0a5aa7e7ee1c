"""The importer's vectorised identifier rules equal the core's scalar ones, so an import and OneID hash alike."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from marketloop.core.identifiers import id_card_check_digit, normalise_email, normalise_id_card, normalise_phone
from marketloop.core.personal import COMPOUND_SURNAMES, family_name
from marketloop.profiles import normalise

digits = st.text(alphabet="0123456789", min_size=0, max_size=20)
phone_like = st.one_of(
    st.builds(lambda p, n: p + n, st.sampled_from(["", "+86", "0086", "86", "+86 ", "(0086)"]), digits),
    st.text(alphabet="0123456789 -().+（）８6x", max_size=20),
)
id_like = st.one_of(
    st.builds(lambda d: d + id_card_check_digit(d), st.text(alphabet="0123456789", min_size=17, max_size=17)),
    st.builds(
        lambda region, y, m, d, s: f"{region}{y:04d}{m:02d}{d:02d}{s:03d}",
        st.sampled_from(["110101", "330106"]),
        st.integers(1850, 2030),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 999),
    ).map(lambda first: first + id_card_check_digit(first)),
    st.text(alphabet="0123456789Xx ", max_size=20),
)
email_like = st.text(alphabet="abcAB.@-_ 1", max_size=16)
name_like = st.one_of(
    st.builds(
        lambda s, g: s + g,
        st.sampled_from([*sorted(COMPOUND_SURNAMES), "张", "欧", "司"]),
        st.text("娜三光明", max_size=3),
    ),
    st.text(alphabet="张欧阳司马 ab", max_size=5),
)


def vectorised(expression: pl.Expr, values: list[str]) -> list[str | None]:
    return pl.DataFrame({"v": values}, schema={"v": pl.String}).select(expression.alias("v"))["v"].to_list()


@settings(max_examples=300, deadline=None)
@given(st.lists(phone_like, max_size=20))
def test_phone(values: list[str]) -> None:
    assert vectorised(normalise.phone(pl.col("v")), values) == [normalise_phone(v) for v in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(id_like, max_size=20))
def test_id_card(values: list[str]) -> None:
    rows = pl.LazyFrame({"raw": values}, schema={"raw": pl.String})
    out = normalise.with_id_card(rows, pl.col("raw"), value="v", problem="why", label="id").collect()
    assert out["v"].to_list() == [normalise_id_card(v) for v in values]
    assert [w is None for w in out["why"].to_list()] == [normalise_id_card(v) is not None for v in values]


@settings(max_examples=200, deadline=None)
@given(st.lists(email_like, max_size=20))
def test_email(values: list[str]) -> None:
    assert vectorised(normalise.email(pl.col("v")), values) == [normalise_email(v) for v in values]


@settings(max_examples=200, deadline=None)
@given(st.lists(name_like, max_size=20))
def test_family_name(values: list[str]) -> None:
    assert vectorised(normalise.family_name(pl.col("v")), values) == [family_name(v) for v in values]
