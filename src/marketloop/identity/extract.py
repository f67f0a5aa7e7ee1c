"""Which identifiers an event carries: OneID's extraction rules, and a fast partial decoder for them.

=================================================  ================  =====================================
field of `Event`                                   identifier type   note
=================================================  ================  =====================================
`user_id`                                          user_id           the login id
`anonymous_id`                                     anonymous_id      the SDK's id before login
`previous_id` (alias, Sensors `track_signup`)      anonymous_id      the pre-login id being aliased
`traits.cust_no`                                   cust_no
`traits.id_card`                                   id_card           hashed before it reaches the graph
`traits.phone`                                     phone             hashed before it reaches the graph
`traits.email`                                     email             hashed before it reaches the graph
`context.device.id`, else `properties.$device_id`  device_id         Segment / Sensors conventions
`context.wechat.appid` + `context.wechat.openid`    wechat_openid     value `"{appid}:{openid}"`
`context.wechat.unionid`, else `traits.wechat_unionid`  wechat_unionid
`context.sensors.identities`                       phone, email,     Sensors ID-Mapping 3: `SENSORS_IDENTITIES`
                                                   device_id, …
`traits.<name>`                                    a custom type     types added in settings (`[identity]`)
=================================================  ================  =====================================

Numbers are taken as their decimal text (a phone sent as a JSON number);
values of any other JSON type, and values the type's normaliser refuses (a
phone that is not a mainland mobile, an ID number with a wrong check digit)
are skipped. Every event links all the identifiers it carries - they are the
same evidence that one person sent it (Sensors' ID-Mapping 3 binds them the
same way); the unique types keep a shared device from merging two customers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class _Traits(msgspec.Struct):
    cust_no: Any = None
    id_card: Any = None
    phone: Any = None
    email: Any = None
    wechat_unionid: Any = None


class _Context(msgspec.Struct):
    device: Any = None
    wechat: Any = None
    sensors: Any = None


# Sensors Analytics ID-Mapping 3 `identities` keys (kept by the decoder in `context.sensors.identities`)
# that name one of our types; the login and anonymous ids are already `user_id` / `anonymous_id`.
SENSORS_IDENTITIES = {
    "$identity_mobile": "phone",
    "$identity_email": "email",
    "$identity_android_id": "device_id",
    "$identity_android_uuid": "device_id",
    "$identity_idfv": "device_id",
    "$identity_mp_unionid": "wechat_unionid",
}


class _Properties(msgspec.Struct):
    device_id: Any = msgspec.field(default=None, name="$device_id")


class EventIdentity(msgspec.Struct, kw_only=True):
    """The fields of a JSON-encoded `Event` that identity needs; decoding skips everything else."""

    message_id: str
    type: str
    source_id: str
    received_at: datetime
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    traits: _Traits = msgspec.field(default_factory=_Traits)
    context: _Context = msgspec.field(default_factory=_Context)
    properties: _Properties = msgspec.field(default_factory=_Properties)
    quarantined: bool = False


decoder = msgspec.json.Decoder(EventIdentity)

# Every place in an event record that `raw_identifiers` reads: two records that agree on all of
# them carry the same identifiers, so the loader resolves one record per distinct combination.
KEY_PATHS: tuple[tuple[str, ...], ...] = (
    ("user_id",),
    ("anonymous_id",),
    ("previous_id",),
    ("traits", "cust_no"),
    ("traits", "id_card"),
    ("traits", "phone"),
    ("traits", "email"),
    ("traits", "wechat_unionid"),
    ("context", "device", "id"),
    ("context", "wechat", "unionid"),
    ("context", "wechat", "appid"),
    ("context", "wechat", "openid"),
    ("context", "sensors", "identities"),
    ("properties", "$device_id"),
)


def _text(value: Any) -> str | None:
    if type(value) is str:
        return value or None
    if type(value) is int:
        return str(value)
    return None


def _field(container: Any, name: str) -> str | None:
    return _text(container.get(name)) if type(container) is dict else None


def raw_identifiers(event: EventIdentity) -> tuple[tuple[str, str], ...]:
    """(type name, raw value) pairs the event carries, per the table above; not yet normalised."""
    found: list[tuple[str, str]] = []
    if event.user_id:
        found.append(("user_id", event.user_id))
    if event.anonymous_id:
        found.append(("anonymous_id", event.anonymous_id))
    if event.previous_id and event.previous_id != event.anonymous_id:
        found.append(("anonymous_id", event.previous_id))
    traits, context = event.traits, event.context
    for name in ("cust_no", "id_card", "phone", "email"):
        value = _text(getattr(traits, name))
        if value:
            found.append((name, value))
    device = _field(context.device, "id") or _text(event.properties.device_id)
    if device:
        found.append(("device_id", device))
    wechat = context.wechat
    if wechat is not None or traits.wechat_unionid is not None:
        found.extend(_wechat(wechat, traits.wechat_unionid))
    if context.sensors is not None:
        found.extend(_sensors(context.sensors))
    return tuple(found)


def _sensors(sensors: Any) -> list[tuple[str, str]]:
    identities = sensors.get("identities") if type(sensors) is dict else None
    if type(identities) is not dict:
        return []
    found = []
    for key, type_name in SENSORS_IDENTITIES.items():
        value = _text(identities.get(key))
        if value and (type_name, value) not in found:
            found.append((type_name, value))
    return found


class _TraitsOnly(msgspec.Struct):
    traits: dict[str, Any] = msgspec.field(default_factory=dict)


_traits_decoder = msgspec.json.Decoder(_TraitsOnly)


def custom_identifiers(record: bytes, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(type name, raw value) of the custom identifier types an event record carries in `traits.<name>`."""
    if not names:
        return ()
    traits = _traits_decoder.decode(record).traits
    return tuple((name, value) for name in names if (value := _text(traits.get(name))))


def _wechat(wechat: Any, trait_unionid: Any) -> list[tuple[str, str]]:
    found = []
    unionid = _field(wechat, "unionid") or _text(trait_unionid)
    if unionid:
        found.append(("wechat_unionid", unionid))
    appid, openid = _field(wechat, "appid"), _field(wechat, "openid")
    if appid and openid:
        found.append(("wechat_openid", f"{appid}:{openid}"))
    return found
