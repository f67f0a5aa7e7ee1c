"""Maker-checker approvals (双人复核): a maker asks, a different user with `approvals:decide` decides,
the maker uses the approval once.

Gated actions and the permission a maker needs to ask for each are data
(`GATED_ACTIONS`). Today the segment export asks for `segment.export`;
publishing journeys, deleting tags, promoting models and bulk sends call
`request` / `use` with their own action names. Requests expire (by default
after three days) whether decided or not. Every step is audited.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType

from marketloop.access.principal import Principal
from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.ports.access import Approval, ApprovalStore
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.clock import Clock

PENDING, APPROVED, REJECTED, USED = "pending", "approved", "rejected", "used"
STATUSES = (PENDING, APPROVED, REJECTED, USED)
DECIDE = "approvals:decide"

GATED_ACTIONS: MappingProxyType[str, str] = MappingProxyType(
    {
        "segment.export": "segments:export",
        "customers.export": "customers:export",
        "journey.publish": "journeys:publish",
        "send.bulk": "sends:bulk",
        "tag.delete": "tags:delete",
        "model.promote": "models:promote",
    }
)


def _error(kind: ErrorKind, code: str, title: str, detail: str = "") -> MarketloopError:
    return MarketloopError(kind=kind, code=f"approval.{code}", title=title, detail=detail)


class ApprovalService:
    """See the module docstring."""

    def __init__(
        self, store: ApprovalStore, clock: Clock, audit: AuditRecorder, *, ttl: timedelta = timedelta(days=3)
    ) -> None:
        self._store = store
        self._clock = clock
        self._audit = audit
        self._ttl = ttl

    def request(
        self,
        action: str,
        target: str,
        *,
        maker: Principal,
        reason: str,
        details: Mapping[str, object] | None = None,
    ) -> Approval:
        """A new pending request by `maker`, who must hold the action's permission."""
        needed = GATED_ACTIONS.get(action)
        if needed is None:
            known = ", ".join(GATED_ACTIONS)
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="approval.invalid",
                title="The request is not valid",
                errors=[FieldError(pointer="/action", detail=f"must be one of {known}")],
            )
        if not maker.may(needed):
            raise _error(ErrorKind.FORBIDDEN, "forbidden", f"Asking for {action} needs {needed}")
        if not target.strip() or not reason.strip():
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="approval.invalid",
                title="The request is not valid",
                errors=[FieldError(pointer="/target" if not target.strip() else "/reason", detail="must not be empty")],
            )
        now = self._clock.now()
        approval = Approval(
            id="apr_" + secrets.token_hex(6),
            action=action,
            target=target.strip(),
            details=dict(details or {}),
            reason=reason.strip(),
            requested_by=maker.username,
            requested_at=now,
            status=PENDING,
            decided_by=None,
            decided_at=None,
            decision_note=None,
            expires_at=now + self._ttl,
            used_at=None,
        )
        self._store.add(approval)
        self._record("approval.request", approval, maker.actor, {"reason": approval.reason})
        return approval

    def get(self, approval_id: str, *, viewer: Principal) -> Approval:
        """The request; a maker sees their own, a checker (approvals:decide) every one."""
        found = self._store.get(approval_id)
        if found is None or not (viewer.may(DECIDE) or found.requested_by == viewer.username):
            raise _error(ErrorKind.NOT_FOUND, "not-found", "No such approval request", approval_id)
        return found

    def requests(self, *, viewer: Principal, status: str | None = None, limit: int = 100) -> list[Approval]:
        """Requests newest first: a checker sees every one, a maker their own."""
        if status is not None and status not in STATUSES:
            raise _error(ErrorKind.INVALID, "invalid", "Unknown status", f"one of {', '.join(STATUSES)}")
        mine = None if viewer.may(DECIDE) else viewer.username
        return self._store.search(status=status, requested_by=mine, limit=max(1, min(limit, 1000)))

    def decide(self, approval_id: str, *, checker: Principal, approve: bool, note: str = "") -> Approval:
        """Approve or reject a pending request; the checker must not be its maker."""
        if not checker.may(DECIDE):
            raise _error(ErrorKind.FORBIDDEN, "forbidden", f"Deciding needs {DECIDE}")
        found = self.get(approval_id, viewer=checker)
        if found.requested_by == checker.username:
            raise _error(ErrorKind.FORBIDDEN, "own-request", "You cannot decide your own request (maker-checker)")
        now = self._clock.now()
        if found.status != PENDING or now >= found.expires_at:
            raise _error(ErrorKind.CONFLICT, "not-pending", "The request is no longer pending", found.status)
        status = APPROVED if approve else REJECTED
        if not self._store.decide(approval_id, status=status, by=checker.username, at=now, note=note.strip()):
            raise _error(ErrorKind.CONFLICT, "not-pending", "The request was decided meanwhile")
        decided = self.get(approval_id, viewer=checker)
        self._record(f"approval.{'approve' if approve else 'reject'}", decided, checker.actor, {"note": note.strip()})
        return decided

    def use(self, approval_id: str | None, *, action: str, target: str, user: Principal) -> Approval:
        """Spend an approved request of `user` for `action` on `target`; each approval works once."""
        if not approval_id:
            raise _error(
                ErrorKind.FORBIDDEN,
                "required",
                f"{action} needs an approved request",
                f"ask with POST /v1/approvals {{action: {action!r}, target: {target!r}}}, then pass its id",
            )
        found = self._store.get(approval_id)
        valid = found is not None and found.requested_by == user.username
        if found is None or not valid or found.action != action or found.target != target:
            raise _error(ErrorKind.FORBIDDEN, "mismatch", "This approval is not yours for this action", approval_id)
        if found.status != APPROVED or self._clock.now() >= found.expires_at:
            raise _error(ErrorKind.FORBIDDEN, "not-approved", "The request is not approved (or expired)", found.status)
        if not self._store.use(approval_id, self._clock.now()):
            raise _error(ErrorKind.FORBIDDEN, "not-approved", "The approval was used already")
        used = self._store.get(approval_id) or found
        self._record("approval.use", used, user.actor, {})
        return used

    def _record(self, action: str, approval: Approval, actor: str, details: dict[str, object]) -> None:
        base = {"action": approval.action, "target": approval.target, "maker": approval.requested_by}
        self._audit.record(action, f"approval:{approval.id}", details=base | details, actor=actor)
