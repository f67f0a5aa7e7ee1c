"""Tag definitions: versions, kinds, lineage, bad definitions pointing at the spot, cycles."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from marketloop.core.errors import MarketloopError
from marketloop.ports.tags import TagCategory, TagKind
from marketloop.segments.errors import DefinitionError
from marketloop.tags.definitions import TagDraft

if TYPE_CHECKING:
    from conftest import Bank


def draft(name: str, definition: dict[str, object] | None, **fields: object) -> TagDraft:
    return TagDraft(name=name, title=name, category=TagCategory.VALUE, definition=definition, **fields)  # type: ignore[arg-type]


def test_every_version_is_kept_and_the_newest_is_current(bank: Bank) -> None:
    first = bank.service.create(draft("rich", {"when": "aum >= 500000"}, owner="retail-ops"))
    second = bank.service.create(draft("rich", {"when": "aum >= 600000"}, shared_with=("credit_card",)))
    assert (first.version, second.version) == (1, 2)
    assert bank.service.get("rich").definition == second.definition
    assert bank.service.get("rich", 1).owner == "retail-ops"
    assert [v.version for v in bank.service.versions("rich")] == [1, 2]
    assert second.shared_with == ("credit_card",)
    assert [t.name for t in bank.service.list()] == ["rich"]


def test_lineage_names_relations_events_and_tags_read(bank: Bank) -> None:
    base = bank.service.create(draft("recent", {"when": "did login within 30d"}))
    tag = bank.service.create(
        draft(
            "mixed",
            {
                "cases": [
                    {"when": 'holds(product_type = "wealth") and tag recent', "value": "wealth"},
                    {"when": 'transacted(category = "salary", within = 30d) or city = "上海"', "value": "x"},
                ],
                "else": "other",
            },
        )
    )
    assert base.lineage.events == ("login",)
    assert base.lineage.time_dependent
    assert tag.lineage.relations == ("customer_tags", "customers", "holdings", "products", "transactions")
    assert tag.lineage.tags == ("recent",)
    assert tag.values == ("wealth", "x", "other")
    static = bank.service.create(draft("vip_list", None, kind=TagKind.STATIC))
    assert static.lineage.relations == ()
    assert not static.lineage.time_dependent
    plain = bank.service.create(draft("shanghai", {"when": 'city = "上海"'}))
    assert not plain.lineage.time_dependent


def test_a_text_condition_error_points_at_its_case_line_and_column(bank: Bank) -> None:
    bad = {"cases": [{"when": "aum > 1", "value": "a"}, {"when": "age > 3 and\n  agee > 5", "value": "b"}]}
    with pytest.raises(DefinitionError) as caught:
        bank.service.create(draft("bad", bad))
    (problem,) = caught.value.problems
    assert problem.code == "unknown-field"
    assert problem.position is not None
    assert (problem.position.pointer, problem.position.line, problem.position.column) == (
        "/definition/cases/1/when",
        2,
        3,
    )
    assert "did you mean age" in problem.message


def test_a_json_condition_error_points_into_the_json(bank: Bank) -> None:
    bad = {"when": {"and": [{"field": "aum", "op": ">", "value": "lots"}, {"did": "login", "within": "0d"}]}}
    with pytest.raises(DefinitionError) as caught:
        bank.service.create(draft("bad", bad))
    pointers = sorted(str(p.position.pointer) for p in caught.value.problems if p.position)
    assert pointers == ["/definition/when/and/0/value", "/definition/when/and/1/within"]


@pytest.mark.parametrize(
    ("definition", "pointer"),
    [
        (None, "/definition"),
        ({"when": "aum > 1", "cases": []}, "/definition"),
        ({"cases": []}, "/definition/cases"),
        ({"cases": [{"when": "aum > 1"}]}, "/definition/cases/0"),
        ({"cases": [{"when": "aum > 1", "value": ""}]}, "/definition/cases/0/value"),
        ({"when": "aum > 1", "else": "x"}, "/definition/else"),
        ({"when": "aum > 1", "then": "x"}, "/definition/then"),
        ({"when": 42}, "/definition/when"),
    ],
)
def test_malformed_rules_are_refused_at_the_spot(
    bank: Bank, definition: dict[str, object] | None, pointer: str
) -> None:
    with pytest.raises(DefinitionError) as caught:
        bank.service.create(draft("bad", definition))
    assert caught.value.problems[0].position is not None
    assert caught.value.problems[0].position.pointer == pointer


def test_unknown_tags_names_kinds_and_cycles_are_refused(bank: Bank) -> None:
    with pytest.raises(DefinitionError, match="unknown tag"):
        bank.service.create(draft("ta", {"when": "tag nothing_like_it"}))
    with pytest.raises(MarketloopError, match="not valid"):
        bank.service.create(draft("Bad Name", {"when": "aum > 1"}))
    bank.service.create(draft("ta", {"when": "aum > 1"}))
    bank.service.create(draft("tb", {"when": "tag ta"}))
    with pytest.raises(MarketloopError, match="cycle") as caught:
        bank.service.create(draft("ta", {"when": "tag tb"}))
    assert "ta → tb → ta" in caught.value.detail
    with pytest.raises(MarketloopError, match="keeps its kind"):
        bank.service.create(draft("ta", None, kind=TagKind.STATIC))
    with pytest.raises(MarketloopError, match="no rule definition"):
        bank.service.create(draft("ts", {"when": "aum > 1"}, kind=TagKind.STATIC))
    with pytest.raises(MarketloopError, match="Other tags read ta"):
        bank.service.retire("ta")
