"""Masking by privilege, and watermarked exports recorded in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from marketloop.adapters.sql.audit import SqlAuditStore
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.core.errors import MarketloopError
from marketloop.core.identifiers import mask_email, mask_id_card, mask_name, mask_phone
from marketloop.security.audit import AuditLog
from marketloop.security.exports import (
    EXPORTED_AT,
    EXPORTED_BY,
    ExportFormat,
    export_frame,
    read_csv_watermark,
    watermark,
)
from marketloop.security.masking import PersonalKind, Privilege, mask, mask_record
from marketloop.testing.clock import FrozenClock

AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def test_masks() -> None:
    assert mask_phone("13812341234") == "138****1234"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_id_card("110101199001011234") == "1101**********1234"
    assert mask_id_card("1234") == "****"
    assert mask_email("zhang.san@example.com") == "z***@example.com"
    assert mask_email("not-an-email") == "***"


def test_mask_by_privilege() -> None:
    assert mask(PersonalKind.PHONE, "13812341234", set()) == "138****1234"
    assert mask(PersonalKind.PHONE, "13812341234", {Privilege.REVEAL_PERSONAL}) == "13812341234"
    assert mask(PersonalKind.NAME, None, set()) is None


def test_mask_record_drops_stored_forms() -> None:
    record = {
        "cust_no": "C1",
        "name": "张三",
        "phone": "13812341234",
        "phone_hash": "ab",
        "name_enc": "v1.k1.x",
        "aum": 5,
    }
    assert mask_record(record, set()) == {"cust_no": "C1", "name": "张*", "phone": "138****1234", "aum": 5}
    assert mask_record(record, {Privilege.REVEAL_PERSONAL})["name"] == "张三"


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    engine: sa.Engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    upgrade(engine)
    return AuditLog(SqlAuditStore(engine), FrozenClock())


def test_csv_export_is_watermarked_and_audited(tmp_path: Path, audit: AuditLog) -> None:
    path = tmp_path / "segment.csv"
    rows = [{"cust_no": "C1", "score": 0.5}, {"cust_no": "C2", "score": 0.7}]
    export_frame(rows, path, ExportFormat.CSV, user="user:alice", at=AT, audit=audit, target="segment:42")
    assert read_csv_watermark(path) == {EXPORTED_BY: "user:alice", EXPORTED_AT: "2026-01-05T09:30:00.000000+00:00"}
    assert pl.read_csv(path, comment_prefix="#")["cust_no"].to_list() == ["C1", "C2"]
    entry = audit.entries()[0]
    assert (entry.action, entry.target, entry.actor) == ("export.write", "segment:42", "user:alice")
    assert entry.details_dict["rows"] == 2
    assert entry.details_dict["format"] == "csv"


def test_parquet_export_carries_metadata(tmp_path: Path, audit: AuditLog) -> None:
    path = tmp_path / "segment.parquet"
    frame = pl.DataFrame({"cust_no": ["C1"]})
    export_frame(frame, path, ExportFormat.PARQUET, user="user:bob", at=AT, audit=audit, target="segment:7")
    metadata = pl.read_parquet_metadata(path)
    assert metadata[EXPORTED_BY] == "user:bob"
    assert metadata[EXPORTED_AT].startswith("2026-01-05T09:30")
    assert pl.read_parquet(path).equals(frame)


def test_a_user_cannot_break_the_csv_watermark_line(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    watermark(pl.DataFrame({"a": [1]}), user="eve\nfake;x=y", at=AT).write_csv(path)
    assert path.read_text().count("\n") == 3
    assert read_csv_watermark(path)[EXPORTED_BY] == "eve fake,x=y"


def test_an_export_needs_a_user() -> None:
    with pytest.raises(MarketloopError):
        watermark([], user=" ", at=AT)


def test_to_bytes(audit: AuditLog) -> None:
    marked = watermark([{"a": 1}], user="u", at=AT)
    assert marked.to_bytes(ExportFormat.CSV).startswith(b"# marketloop_exported_by=u")
    assert marked.to_bytes(ExportFormat.PARQUET)[:4] == b"PAR1"
