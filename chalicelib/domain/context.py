"""Who is calling: the request context of Glance's context middleware."""
from __future__ import annotations

import dataclasses
from typing import Iterable


@dataclasses.dataclass(frozen=True)
class RequestContext:
    tenant: str | None = None
    user: str | None = None
    roles: tuple = ()
    is_admin: bool = False

    @property
    def owner(self) -> str | None:
        """The owner new images get (owner_is_tenant=True)."""
        return self.tenant


ADMIN_ROLE = 'admin'


def from_identity(tenant: str | None, user: str | None, roles: Iterable[str]) -> RequestContext:
    roles = tuple(r.strip().lower() for r in roles if r.strip())
    return RequestContext(tenant=tenant or None, user=user or None, roles=roles,
                          is_admin=ADMIN_ROLE in roles)


# The "no auth" pipeline: every request is an admin with no tenant.
NOAUTH = RequestContext(is_admin=True)
