"""Bad definitions: every kind of problem is reported with the position of the spot.

JSON-form problems carry the JSON pointer of the offending value; text-form
problems carry the line and column.
"""

from __future__ import annotations

import pytest

from marketloop.segments import ast as a
from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.segments.errors import Code, DefinitionError, Problem
from marketloop.segments.parse import parse_definition
from marketloop.segments.resolve import resolve

SAVED = {
    "seg_a": parse_definition('age >= 30 and segment "seg_b"'),
    "seg_b": parse_definition('segment "seg_c" or city = "上海"'),
    "seg_c": parse_definition('segment "seg_a"'),
    "seg_ok": parse_definition('city = "上海"'),
}


def problems(source: object, *, segment_id: str | None = None, catalog=DEFAULT_CATALOG) -> list[Problem]:
    with pytest.raises(DefinitionError) as raised:
        resolve(parse_definition(source), catalog, SAVED.get, segment_id=segment_id)  # type: ignore[arg-type]
    return raised.value.problems


def one(source: object, **kwargs: object) -> tuple[str, str]:
    found = problems(source, **kwargs)  # type: ignore[arg-type]
    assert len(found) == 1, found
    (problem,) = found
    assert problem.position is not None
    return problem.code, str(problem.position)


@pytest.mark.parametrize(
    ("source", "code", "where"),
    [
        ({"and": [{"field": "age", "op": ">=", "value": 30}, {"field": "agee", "op": ">", "value": 1}]},
         Code.UNKNOWN_FIELD, "/and/1/field"),
        ({"field": "age", "op": ">=", "value": "thirty"}, Code.WRONG_TYPE, "/value"),
        ({"field": "city", "op": ">", "value": "上海"}, Code.WRONG_OPERATOR, "/op"),
        ({"field": "risk_tolerance", "op": "=", "value": "C9"}, Code.UNKNOWN_VALUE, "/value"),
        ({"field": "open_date", "op": ">=", "value": {"relative": "now-2h"}}, Code.WRONG_TYPE, "/value"),
        ({"field": "open_date", "op": "in", "value": ["2026-01-01", "yesterday"]}, Code.WRONG_TYPE, "/value/1"),
        ({"not": {"did": "login", "within": "0d"}}, Code.IMPOSSIBLE_WINDOW, "/not/within"),
        ({"did": "login", "at_least": 0, "within": "7d"}, Code.BAD_COUNT, "/at_least"),
        ({"did": "view", "then_not": "buy", "within": "2d", "in_last": "1d"}, Code.IMPOSSIBLE_WINDOW, "/in_last"),
        ({"sequence": ["a", "b"], "within": "1h", "in_last": "0m"}, Code.IMPOSSIBLE_WINDOW, "/in_last"),
        ({"holds": {"product_type": "stock"}}, Code.UNKNOWN_VALUE, "/holds/product_type"),
        ({"holds": {"maturing_within": "12h"}}, Code.IMPOSSIBLE_WINDOW, "/holds/maturing_within"),
        ({"holds": {"min_balance": 500, "max_balance": 100}}, Code.IMPOSSIBLE_WINDOW, "/holds/max_balance"),
        ({"transacted": {"direction": "sideways", "within": "7d"}}, Code.UNKNOWN_VALUE, "/transacted/direction"),
        ({"did": "buy", "where": [{"property": "fund", "op": ">", "value": "x"}], "within": "7d"},
         Code.WRONG_OPERATOR, "/where/0/value"),
        ({"segment": "seg_nope"}, Code.UNKNOWN_SEGMENT, "/segment"),
        ({"or": [{"segment": "seg_ok"}, {"segment": "seg_a"}]}, Code.SEGMENT_CYCLE, "/or/1/segment"),
    ],
)  # fmt: skip
def test_json_problems_point_at_the_spot(source: object, code: str, where: str) -> None:
    assert one(source) == (code, where)


@pytest.mark.parametrize(
    ("source", "code", "where"),
    [
        ("age >= 30 and\n  agee > 5", Code.UNKNOWN_FIELD, "2:3"),
        ('age >= "thirty"', Code.WRONG_TYPE, "1:8"),
        ('city < "上海"', Code.WRONG_OPERATOR, "1:6"),
        ("did login within 0d", Code.IMPOSSIBLE_WINDOW, "1:18"),
        ("did login at least 0 times within 7d", Code.BAD_COUNT, "1:20"),
        ("did view then not buy within 2d\n  in last 1d", Code.IMPOSSIBLE_WINDOW, "2:11"),
        ('holds(product_type = "stock")', Code.UNKNOWN_VALUE, "1:22"),
        ('segment "seg_nope"', Code.UNKNOWN_SEGMENT, "1:9"),
        ("age >= 30 and (", Code.SYNTAX, "1:16"),
        ("age >= 30 snd city = 1", Code.SYNTAX, "1:11"),
        ("did login within 30", Code.SYNTAX, "1:18"),
        ('transacted(direction = "out")', Code.SYNTAX, "1:1"),
        ("holds(colour = 1)", Code.SYNTAX, "1:16"),
    ],
)
def test_text_problems_carry_line_and_column(source: str, code: str, where: str) -> None:
    assert one(source) == (code, where)


def test_json_syntax_errors_point_at_the_key() -> None:
    assert one({"field": "age", "op": ">=", "value": 30, "valeu": 3}) == (Code.SYNTAX, "/valeu")
    assert one({"and": [{"fild": "age"}]}) == (Code.SYNTAX, "/and/0")
    assert one({"field": "age", "op": "~", "value": 3}) == (Code.SYNTAX, "/op")
    assert one('{"and": [1, }') == (Code.SYNTAX, "1:13")


def test_a_cycle_names_its_path_and_saving_a_segment_into_its_own_cycle_fails() -> None:
    found = problems('segment "seg_a"')
    assert [p.code for p in found] == [Code.SEGMENT_CYCLE]
    assert "seg_a → seg_b → seg_c → seg_a" in found[0].message
    assert one('city = "上海" or segment "seg_x"', segment_id="seg_x") == (Code.SEGMENT_CYCLE, "1:24")


def test_every_problem_is_reported_not_only_the_first() -> None:
    source = "agee > 5 and city > 1 and did login within -3d and tag x"
    with pytest.raises(DefinitionError):
        parse_definition(source)  # -3d is not a duration: a syntax error first
    found = problems("agee > 5 and city > 1 and did login at least 0 times within 1d")
    assert [(p.code, str(p.position)) for p in found] == [
        (Code.UNKNOWN_FIELD, "1:1"),
        (Code.WRONG_OPERATOR, "1:19"),
        (Code.BAD_COUNT, "1:46"),
    ]


def test_unknown_tags_are_problems_once_the_catalog_knows_its_tags() -> None:
    catalog = DEFAULT_CATALOG.with_tags(["rfm", "lifecycle"])
    assert one("tag rfn", catalog=catalog) == (Code.UNKNOWN_TAG, "1:5")
    assert "did you mean rfm" in problems("tag rfn", catalog=catalog)[0].message


def test_the_error_is_a_problem_with_pointers_for_the_api() -> None:
    with pytest.raises(DefinitionError) as raised:
        resolve(parse_definition({"and": [{"field": "agee", "op": "=", "value": 1}]}, pointer="/definition"),
                DEFAULT_CATALOG)  # fmt: skip
    error = raised.value
    assert error.code == "segments.invalid-definition"
    assert [(e.pointer, e.line) for e in error.errors] == [("/definition/and/0/field", None)]
    with pytest.raises(DefinitionError) as raised:
        resolve(parse_definition("age > 1 and\nagee = 1"), DEFAULT_CATALOG)
    assert [(e.line, e.column) for e in raised.value.errors] == [(2, 1)]


def test_positions_do_not_take_part_in_equality() -> None:
    assert parse_definition("age >= 30") == a.Compare(field="age", op=a.Op.GE, value=30)
