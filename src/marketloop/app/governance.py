"""Wiring of the governance services: audit log, consent, compliance rules, personal data and key rotation.

`open_governance` needs only the operational store, so `marketloop audit`
and `marketloop consent` work while `marketloop serve` runs. Key rotation,
erasure and the retention purge work on the analytics store and take the
whole `Container` (the server must be stopped: DuckDB has one writer).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from marketloop.access.service import AccessService
from marketloop.adapters.clock import SystemClock
from marketloop.adapters.duckdb_personal import DuckDBPersonalData
from marketloop.adapters.sql.audit import SqlAuditStore
from marketloop.adapters.sql.consent import SqlConsentStore
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.app import keys
from marketloop.app.container import Container, access_service
from marketloop.app.settings import Settings
from marketloop.campaigns.compliance import ComplianceRules
from marketloop.core.consent import defaults_from
from marketloop.policy.consent import ConsentService
from marketloop.ports.clock import Clock
from marketloop.security.audit import AuditLog
from marketloop.security.crypto import FieldCipher
from marketloop.security.erasure import PersonalDataService
from marketloop.security.rotation import KeyRotation, RotationResult, add_key


def audit_log(engine: sa.Engine, clock: Clock) -> AuditLog:
    return AuditLog(SqlAuditStore(engine), clock)


def consent_service(settings: Settings, engine: sa.Engine, clock: Clock, audit: AuditLog) -> ConsentService:
    allowed = {
        "marketing": settings.consent.marketing_without_record,
        "service": settings.consent.service_without_record,
        "risk": settings.consent.risk_without_record,
    }
    return ConsentService(SqlConsentStore(engine), clock, defaults=defaults_from(allowed), audit=audit)


def compliance_rules(settings: Settings) -> ComplianceRules:
    rules = settings.compliance
    return ComplianceRules.from_settings(
        extra_banned=rules.extra_banned,
        risk_notices=rules.risk_notices,
        sms_opt_out=rules.sms_opt_out,
        sms_signature_required=rules.sms_signature_required,
    )


@dataclass(kw_only=True)
class Governance:
    """Audit log and consent on the operational store only."""

    engine: sa.Engine
    audit: AuditLog
    consent: ConsentService

    def close(self) -> None:
        self.engine.dispose()


def open_governance(settings: Settings) -> Governance:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.state_url)
    upgrade(engine)
    clock = SystemClock()
    audit = audit_log(engine, clock)
    return Governance(engine=engine, audit=audit, consent=consent_service(settings, engine, clock, audit))


def open_access(settings: Settings) -> tuple[AccessService, sa.Engine]:
    """Users, roles and tokens on the operational store alone, so `marketloop users` works while the server runs.

    No branch directory here (the warehouse belongs to the server): scopes are computed by the server.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.state_url)
    upgrade(engine)
    clock = SystemClock()
    return access_service(settings, engine, clock, audit_log(engine, clock)), engine


def personal_data(container: Container, audit: AuditLog) -> PersonalDataService:
    store = DuckDBPersonalData(container.warehouse.cursor, container.warehouse.write_lock)
    return PersonalDataService(store, container.clock, audit=audit)


def key_rotation(container: Container, audit: AuditLog, cipher: FieldCipher | None = None) -> KeyRotation:
    store = DuckDBPersonalData(container.warehouse.cursor, container.warehouse.write_lock)
    return KeyRotation(store, cipher or container.cipher, audit=audit)


def rotate_keys(container: Container, audit: AuditLog, *, new_key: bool = True) -> RotationResult:
    """Add a new current key to the key file (unless `new_key` is False: resume), then re-encrypt every value.

    The key file is saved before any value is re-encrypted, so an interrupted
    rotation never leaves a value under a key that is not on disk.
    """
    path = container.settings.key_file
    field_keys = keys.load_or_create(path)
    if new_key:
        field_keys = add_key(field_keys)
        keys.save(path, field_keys)
        audit.record("keys.add", f"key:{field_keys.current}", details={"key_ids": list(field_keys.encryption)})
    container.cipher = FieldCipher(field_keys)
    return key_rotation(container, audit).reencrypt()
