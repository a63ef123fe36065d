"""Enforcing authz's access policy in any service: ask authz, for the caller's own token.

API
---
- `Authorizer(http, authz_url=...)`: create once in the lifespan, keep as `app.state.authorizer`
  (next to `app.state.jwt_verifier`, which it relies on).
- `await require_permission(request, action, resource) -> Principal`: the caller's verified
  identity when the policy allows `action` on `resource`; otherwise an `ApiError`:
  401 (no, bad or expired token, checked locally first), 403 `forbidden` (the policy says no),
  503 `unavailable` with Retry-After (authz could not be asked; never a silent allow).
  `resource` is a string, or a function of the verified `Principal` for "me" endpoints:
  `await require_permission(request, "profile:read", lambda p: f"user:{p.subject}")`.
- `user_resource(user_id)` spells the resource of one account: `"user:<id>"`.

Actions and resources (the policy itself lives in authz's `policy.py`):
  `profile:read`, `profile:update`, `password:change`, `sessions:revoke` on `user:<id>`
  (the owner, and for `profile:read` an admin); `registrations:list` on `registrations` and
  `deliveries:read` on `deliveries` (admin only).

Why ask authz instead of evaluating a copy of the policy here: there is one decision point, so a
policy change takes effect everywhere when authz is deployed, without redeploying every service
or keeping caches of the policy consistent. The price is one in-cluster call per protected
request; `POST /authorize` does no database work (the roles are in the signed token).
"""

from collections.abc import Callable

import httpx
import structlog
from starlette.requests import Request

from alta_common.errors import ApiError
from alta_common.tokens import Principal, bearer_token, require_principal

log = structlog.get_logger("alta.authorization")


class AuthorizationUnavailable(Exception):
    """authz could not be asked, or answered outside its contract."""


def user_resource(user_id: str) -> str:
    return f"user:{user_id}"


class Authorizer:
    def __init__(self, http: httpx.AsyncClient, *, authz_url: str) -> None:
        self._http = http
        self._authorize_url = f"{authz_url.rstrip('/')}/authorize"

    async def allows(self, token: str, action: str, resource: str) -> bool:
        """authz's decision for the holder of `token`; raises AuthorizationUnavailable."""
        try:
            response = await self._http.post(
                self._authorize_url,
                json={"action": action, "resource": resource},
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError as exc:
            raise AuthorizationUnavailable(type(exc).__name__) from exc
        if response.status_code == 401:
            return False
        if response.status_code != 200:
            raise AuthorizationUnavailable(f"authz answered {response.status_code}")
        try:
            allowed = response.json().get("allowed")
        except ValueError as exc:
            raise AuthorizationUnavailable("authz answered with a malformed body") from exc
        if not isinstance(allowed, bool):
            raise AuthorizationUnavailable("authz answered with a malformed body")
        return allowed


async def require_permission(
    request: Request, action: str, resource: str | Callable[[Principal], str]
) -> Principal:
    """The verified caller, once authz's policy allows `action` on `resource` (see module doc)."""
    principal = await require_principal(request)
    token = bearer_token(request)
    assert token is not None  # require_principal refused requests without one
    target = resource(principal) if callable(resource) else resource
    authorizer: Authorizer = request.app.state.authorizer
    try:
        allowed = await authorizer.allows(token, action, target)
    except AuthorizationUnavailable as exc:
        log.warning("authorization unavailable", error=str(exc))
        raise ApiError(
            503,
            "unavailable",
            "Permissions cannot be checked right now; try again.",
            headers={"Retry-After": "2"},
        ) from exc
    if not allowed:
        log.info("permission denied", subject=principal.subject, action=action, resource=target)
        raise ApiError(403, "forbidden", "You are not allowed to do this.")
    return principal
