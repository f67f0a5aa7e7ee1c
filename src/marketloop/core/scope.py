"""Data scope (数据范围): which customers a user may see, by the branch hierarchy and the RM assignment.

Head office sees every customer; a branch manager the customers of their
branch and its sub-branches; a relationship manager (客户经理) only the
customers assigned to them. Pure: the branch subtree is computed by the
access engine and handed in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Scope:
    """`branch_ids` None: any branch; `rm_id` None: any RM. Both given: both must hold."""

    branch_ids: frozenset[str] | None = None
    rm_id: str | None = None

    @property
    def everything(self) -> bool:
        return self.branch_ids is None and self.rm_id is None

    def allows(self, branch_id: str | None, rm_id: str | None) -> bool:
        """Whether a customer of `branch_id`, assigned to `rm_id`, is inside the scope."""
        if self.rm_id is not None and rm_id != self.rm_id:
            return False
        return self.branch_ids is None or (branch_id is not None and branch_id in self.branch_ids)

    def describe(self) -> str:
        if self.everything:
            return "all customers"
        if self.rm_id is not None:
            return f"customers of RM {self.rm_id}"
        return f"customers of branches {', '.join(sorted(self.branch_ids or ()))}"


EVERYTHING = Scope()
