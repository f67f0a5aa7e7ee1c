"""OneID's identifier types from settings: built-in types re-ranked, custom types carried in `traits.<name>`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from pydantic import ValidationError

from marketloop.app.container import Container
from marketloop.app.settings import IdentitySettings, Settings
from marketloop.core.events import Event

AT = datetime(2026, 11, 2, 9, tzinfo=UTC)
CUSTOM = {"custom_types": [{"name": "card_cust_id", "priority": 95, "unique": True, "description": "信用卡客户号"}]}


def _record(message_id: str, **fields: object) -> bytes:
    event = Event(message_id=message_id, type="identify", source_id="s", received_at=AT, timestamp=AT, **fields)  # type: ignore[arg-type]
    return msgspec.json.encode(event)


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    settings = Settings(
        data_dir=tmp_path, identity=IdentitySettings.model_validate(CUSTOM | {"priorities": {"device_id": 85}})
    )
    opened = Container.open(settings)
    yield opened
    opened.close()


def test_a_custom_type_in_traits_links_through_the_loader(container: Container) -> None:
    records = [
        _record("m1", user_id="u-1", traits={"card_cust_id": "CC-77"}),
        _record("m2", anonymous_id="a-1", traits={"card_cust_id": "CC-77"}),
        _record("m3", user_id="u-2", traits={"card_cust_id": "CC-88"}),
    ]
    asyncio.run(container.log.append(0, records))
    container.loader.drain()
    identity = container.identity
    one_id = identity.resolve(identity.identifier("card_cust_id", "CC-77"))
    assert one_id is not None
    assert identity.resolve(identity.identifier("user_id", "u-1")) == one_id
    assert identity.resolve(identity.identifier("anonymous_id", "a-1")) == one_id
    assert identity.resolve(identity.identifier("user_id", "u-2")) != one_id
    rows = container.warehouse.cursor().execute("SELECT message_id, id_type FROM events ORDER BY 1").fetchall()
    assert rows == [("m1", "card_cust_id"), ("m2", "card_cust_id"), ("m3", "card_cust_id")], "priority 95 wins"


def test_a_unique_custom_type_refuses_to_merge_two_values(container: Container) -> None:
    asyncio.run(container.log.append(0, [_record("m1", user_id="u-1", traits={"card_cust_id": "CC-1"})]))
    container.loader.drain()
    asyncio.run(container.log.append(0, [_record("m2", user_id="u-1", traits={"card_cust_id": "CC-2"})]))
    container.loader.drain()
    identity = container.identity
    assert identity.resolve(identity.identifier("card_cust_id", "CC-1")) != identity.resolve(
        identity.identifier("card_cust_id", "CC-2")
    )


def test_priorities_re_rank_built_in_types() -> None:
    types = IdentitySettings(priorities={"device_id": 85}, unique={"phone": True}).types()
    assert types.priority("device_id") == 85
    assert types.get("phone").unique
    assert types.sort_keys(["device_id\x1fd", "user_id\x1fu"])[0].startswith("device_id")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"priorities": {"passport": 5}}, "no built-in identifier type"),
        ({"custom_types": [{"name": "phone", "priority": 1}]}, "name of a built-in type"),
        ({"custom_types": [{"name": "Bad Name", "priority": 1}]}, "pattern"),
    ],
)
def test_bad_identity_settings_are_refused_with_the_reason(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        IdentitySettings.model_validate(config)
