"""The declared access policy: which role may do which action on which resource."""

from dataclasses import dataclass
from typing import Literal

Scope = Literal["own", "any"]


@dataclass(frozen=True)
class Rule:
    role: str
    action: str
    resource: str
    # "own": only when the caller is the resource's owner.
    scope: Scope


POLICY: tuple[Rule, ...] = (
    Rule("user", "read", "profile", "own"),
    Rule("user", "update", "profile", "own"),
    Rule("admin", "read", "profile", "any"),
    Rule("admin", "list", "registrations", "any"),
)
ROLES = frozenset(rule.role for rule in POLICY)


def is_allowed(
    *, subject: str, roles: frozenset[str], action: str, resource: str, owner: str | None
) -> bool:
    return any(
        rule.role in roles
        and rule.action == action
        and rule.resource == resource
        and (rule.scope == "any" or (owner is not None and owner == subject))
        for rule in POLICY
    )
