"""Who is calling: the workspace, the credential and the role it acts with."""

from __future__ import annotations

from dataclasses import dataclass

from shopkeeper.errors import Forbidden

# Higher number, more power. A secret API key acts as an admin of its workspace.
ROLE_RANK = {"viewer": 0, "agent": 1, "marketer": 1, "admin": 2, "owner": 3}


@dataclass(frozen=True, slots=True)
class Principal:
    workspace_id: str
    actor: str  # "key:<id>" or "user:<id>"
    role: str
    key_kind: str | None = None

    def require(self, role: str) -> None:
        if ROLE_RANK[self.role] < ROLE_RANK[role]:
            raise Forbidden(f"this needs the {role} role; the caller is {self.role}")
