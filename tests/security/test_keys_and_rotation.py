"""Field encryption: round trip, tampering and context refused, key rotation of the customers table."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from marketloop.adapters.duckdb_personal import DuckDBPersonalData
from marketloop.adapters.duckdb_warehouse import DuckDBWarehouse
from marketloop.app import keys as key_file
from marketloop.core.errors import MarketloopError
from marketloop.security.crypto import FieldCipher, FieldKeys
from marketloop.security.rotation import KeyRotation, add_key

from .conftest import add_customers

PERSONAL = ("name_enc", "phone_enc", "email_enc")


def test_round_trip_binds_the_context(keys: FieldKeys) -> None:
    cipher = FieldCipher(keys)
    sealed = cipher.encrypt("张三", context="name_enc")
    assert sealed.startswith("v1.k1.")
    assert "张三" not in sealed
    assert cipher.decrypt(sealed, context="name_enc") == "张三"
    assert cipher.encrypt("张三", context="name_enc") != sealed  # a fresh nonce every time
    with pytest.raises(MarketloopError, match="cannot be decrypted"):
        cipher.decrypt(sealed, context="phone_enc")


@pytest.mark.parametrize("position", [0, 5, 20, -1])
def test_tampered_ciphertext_is_refused(keys: FieldKeys, position: int) -> None:
    cipher = FieldCipher(keys)
    version, key_id, payload = cipher.encrypt("13800138000", context="phone_enc").split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload))
    raw[position] ^= 0x01
    tampered = f"{version}.{key_id}.{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(MarketloopError) as caught:
        cipher.decrypt(tampered, context="phone_enc")
    assert caught.value.code == "crypto.undecryptable"


@pytest.mark.parametrize("garbage", ["", "v1", "v1.k1.", "v2.k1.AAAA", "v1.k9.AAAA", "v1.k1.!!!!", "plain text"])
def test_garbage_is_refused_with_a_domain_error(keys: FieldKeys, garbage: str) -> None:
    with pytest.raises(MarketloopError):
        FieldCipher(keys).decrypt(garbage, context="name_enc")


def test_a_wrong_key_is_refused(keys: FieldKeys) -> None:
    sealed = FieldCipher(keys).encrypt("张三", context="name_enc")
    with pytest.raises(MarketloopError):
        FieldCipher(FieldKeys.generate()).decrypt(sealed, context="name_enc")


def test_add_key_keeps_old_keys_and_the_hash_key(keys: FieldKeys) -> None:
    rotated = add_key(add_key(keys))
    assert rotated.current == "k3"
    assert set(rotated.encryption) == {"k1", "k2", "k3"}
    assert rotated.hashing == keys.hashing
    assert rotated.encryption["k1"] == keys.encryption["k1"]


def test_key_file_round_trip(tmp_path: Path, keys: FieldKeys) -> None:
    path = tmp_path / "keys" / "field-keys.json"
    rotated = add_key(keys)
    key_file.save(path, rotated)
    assert key_file.load_or_create(path) == rotated
    assert path.stat().st_mode & 0o777 == 0o600


def test_rotation_reencrypts_every_column_and_old_ciphertexts_decrypt_before(
    warehouse: DuckDBWarehouse, keys: FieldKeys
) -> None:
    add_customers(warehouse, FieldCipher(keys), count=7)
    before = warehouse.cursor().execute("SELECT cust_no, name_enc, phone_enc, email_enc FROM customers").fetchall()
    new = FieldCipher(add_key(keys))
    # Before rotation: old ciphertexts still decrypt with the new key set.
    assert new.decrypt(before[0][1], context="name_enc") == "张三"
    store = DuckDBPersonalData(warehouse.cursor, warehouse.write_lock)
    rotation = KeyRotation(store, new, chunk=2)  # several chunks per column
    status = rotation.status()
    assert status.current == "k2"
    assert status.stale == 7 + 7 + 4
    result = rotation.reencrypt()
    assert (result.reencrypted, result.failed) == (18, 0)
    assert rotation.status().stale == 0
    after = {row[0]: row for row in warehouse.cursor().execute(
        "SELECT cust_no, name_enc, phone_enc, email_enc FROM customers").fetchall()}  # fmt: skip
    for cust_no, *old in before:
        for column, old_value, new_value in zip(PERSONAL, old, after[cust_no][1:], strict=True):
            if old_value is None:
                assert new_value is None
                continue
            assert new_value.startswith("v1.k2.")
            assert new.decrypt(new_value, context=column) == new.decrypt(old_value, context=column)
    assert rotation.reencrypt().reencrypted == 0  # resumable: nothing left to do


def test_an_undecryptable_value_is_counted_and_left(warehouse: DuckDBWarehouse, keys: FieldKeys) -> None:
    add_customers(warehouse, FieldCipher(keys), count=3)
    warehouse.cursor().execute("UPDATE customers SET name_enc = 'v1.k1.AAAAbroken' WHERE cust_no = 'C0001'")
    rotation = KeyRotation(DuckDBPersonalData(warehouse.cursor, warehouse.write_lock), FieldCipher(add_key(keys)))
    result = rotation.reencrypt()
    assert result.failed == 1
    assert rotation.status().stale == 1
    assert rotation.reencrypt().failed == 1  # still there, still reported, nothing else redone
