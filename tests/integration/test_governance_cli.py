"""The governance commands end to end: audit verify and list, keys, consent, compliance, erasure, purge."""

from __future__ import annotations

from pathlib import Path

import orjson
import sqlalchemy as sa
from typer.testing import CliRunner

from marketloop.adapters.duckdb_warehouse import DuckDBWarehouse
from marketloop.app import keys as key_file
from marketloop.cli.main import app
from marketloop.security.crypto import FieldCipher

runner = CliRunner()


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(tmp_path)])
    return result.exit_code, result.stdout


def test_source_changes_are_audited_and_tampering_is_reported(tmp_path: Path) -> None:
    assert run(tmp_path, "sources", "create", "app")[0] == 0
    assert run(tmp_path, "sources", "set-mode", "app", "block")[0] == 0
    assert run(tmp_path, "sources", "disable", "app")[0] == 0
    code, out = run(tmp_path, "audit", "list", "--json")
    assert code == 0
    entries = orjson.loads(out)
    assert [e["action"] for e in entries] == ["source.disable", "source.set-mode", "source.create"]
    assert entries[0]["target"] == "source:app"
    code, out = run(tmp_path, "audit", "verify", "--json")
    assert code == 0
    assert orjson.loads(out)["ok"] is True

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2"))
    engine.dispose()
    code, out = run(tmp_path, "audit", "verify", "--json")
    assert code == 7
    assert orjson.loads(out)["broken"] == {"seq": 2, "kind": "edited", "detail": "content does not match its hash"}
    code, _ = run(tmp_path, "audit", "verify")
    assert code == 7


def test_tracking_plan_changes_are_audited(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("events:\n  login:\n    properties: {}\n")
    result = runner.invoke(app, ["tracking", "set", str(plan), "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    _code, out = run(tmp_path, "audit", "list", "--action", "tracking_plan.", "--json")
    assert [e["target"] for e in orjson.loads(out)] == ["tracking_plan:v1"]


def _customers(tmp_path: Path) -> None:
    cipher = FieldCipher(key_file.load_or_create(tmp_path / "keys" / "field-keys.json"))
    warehouse = DuckDBWarehouse(tmp_path / "warehouse" / "events.duckdb")
    try:
        from marketloop.adapters.duckdb_bank import DuckDBBankStore
        from marketloop.core.bank import CUSTOMERS

        from ..security.conftest import customers_frame

        DuckDBBankStore(warehouse.cursor, warehouse.write_lock).merge(CUSTOMERS, customers_frame(cipher, 3))
    finally:
        warehouse.close()


def test_keys_rotate_and_status(tmp_path: Path) -> None:
    _customers(tmp_path)
    code, out = run(tmp_path, "keys", "status", "--json")
    assert code == 0
    assert orjson.loads(out)["current"] == "k1"
    code, out = run(tmp_path, "keys", "rotate", "--json")
    assert code == 0, out
    rotated = orjson.loads(out)
    assert rotated["key_id"] == "k2"
    assert rotated["reencrypted"] == 3 + 3 + 2
    status = orjson.loads(run(tmp_path, "keys", "status", "--json")[1])
    assert status["key_ids"] == ["k1", "k2"]
    assert status["stale"] == 0
    assert run(tmp_path, "keys", "rotate", "--resume", "--json")[0] == 0
    assert orjson.loads(run(tmp_path, "keys", "status", "--json")[1])["current"] == "k2"
    actions = [e["action"] for e in orjson.loads(run(tmp_path, "audit", "list", "--json")[1])]
    assert actions == ["keys.reencrypt", "keys.reencrypt", "keys.add"]


def test_customers_erase_and_events_purge(tmp_path: Path) -> None:
    _customers(tmp_path)
    code, out = run(tmp_path, "customers", "erase", "C0001", "--reason", "request 42", "--yes", "--json")
    assert code == 0, out
    assert orjson.loads(out)["customer_rows"] == 1
    assert (
        orjson.loads(run(tmp_path, "customers", "erase", "C0001", "--reason", "again", "--yes", "--json")[1])[
            "customer_rows"
        ]
        == 0
    )
    code, out = run(tmp_path, "events", "purge", "--older-than", "30", "--json")
    assert code == 0
    assert orjson.loads(out)["events"] == 0
    assert run(tmp_path, "audit", "verify")[0] == 0


def test_consent_set_and_show(tmp_path: Path) -> None:
    code, _ = run(tmp_path, "consent", "set", "C0001", "--channel", "sms", "--status", "granted", "--source", "counter")
    assert code == 0
    code, out = run(tmp_path, "consent", "show", "C0001", "--history", "--json")
    shown = orjson.loads(out)
    allowed = {(d["purpose"], d["channel"]) for d in shown["decisions"] if d["allowed"]}
    assert ("marketing", "sms") in allowed
    assert ("marketing", "push") not in allowed
    assert [r["source"] for r in shown["history"]] == ["counter"]
    assert run(tmp_path, "consent", "set", "C0001", "--channel", "fax", "--status", "granted", "--source", "x")[0] == 2


def test_compliance_check(tmp_path: Path) -> None:
    code, out = run(tmp_path, "compliance", "check", "--text", "保本稳赚", "--product-type", "wealth", "--json")
    assert code == 1
    report = orjson.loads(out)
    assert not report["passed"]
    assert {f["code"] for f in report["findings"]} >= {"banned-claim", "risk-notice-missing"}
    text = "【海河银行】新品理财。理财非存款、产品有风险、投资须谨慎。拒收请回复R"
    code, out = run(tmp_path, "compliance", "check", "--text", text, "--product-type", "wealth", "--product-risk", "R3",
                    "--channel", "sms", "--customer-tolerance", "C2", "--json")  # fmt: skip
    assert code == 1
    assert [f["code"] for f in orjson.loads(out)["findings"]] == ["suitability"]
    config = tmp_path / "marketloop.toml"
    config.write_text('[compliance]\nextra_banned = ["翻倍"]\n')
    result = runner.invoke(app, ["compliance", "check", "--text", "收益翻倍", "--config", str(config), "--json"])
    assert result.exit_code == 1
    assert orjson.loads(result.stdout)["findings"][0]["matched"] == "翻倍"
