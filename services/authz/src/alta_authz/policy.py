"""The declared access policy: which role may do which action on which resource.

This table is the only place the policy is written down. `POST /authorize` answers from it, and
every service enforces it through `alta_common.authorization`, which asks that endpoint.

A resource is `type` (a collection, e.g. `registrations`) or `type:id` (one item). An item of
type `user` is owned by the account with that id; a rule with scope "own" applies only to the
owner, "any" to every item of the type.
"""

from dataclasses import dataclass
from typing import Literal

Scope = Literal["own", "any"]


@dataclass(frozen=True)
class Rule:
    role: str
    action: str
    resource_type: str
    scope: Scope


POLICY: tuple[Rule, ...] = (
    Rule("user", "profile:read", "user", "own"),
    Rule("user", "profile:update", "user", "own"),
    Rule("user", "password:change", "user", "own"),
    Rule("user", "sessions:revoke", "user", "own"),
    Rule("admin", "profile:read", "user", "any"),
    Rule("admin", "registrations:list", "registrations", "any"),
    Rule("admin", "deliveries:read", "deliveries", "any"),
)
ROLES = frozenset(rule.role for rule in POLICY)
# Types whose items belong to someone, and how to tell whom from the item's id.
_OWNED_TYPES = frozenset({"user"})


def _owner(resource_type: str, resource_id: str | None) -> str | None:
    return resource_id if resource_type in _OWNED_TYPES else None


def is_allowed(*, subject: str, roles: frozenset[str], action: str, resource: str) -> bool:
    resource_type, _, resource_id = resource.partition(":")
    owner = _owner(resource_type, resource_id or None)
    return any(
        rule.role in roles
        and rule.action == action
        and rule.resource_type == resource_type
        and (rule.scope == "any" or (owner is not None and owner == subject))
        for rule in POLICY
    )
