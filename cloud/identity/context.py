"""Who is asking: the identity behind a validated token, passed from views into service functions."""

from __future__ import annotations

from dataclasses import dataclass, field

from cloud import errors


@dataclass(frozen=True)
class RequestContext:
    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    roles: tuple[str, ...] = field(default_factory=tuple)
    request_id: str = "-"
    # Set when the token was got with an application credential; `restricted` unless that one is
    # unrestricted (Keystone's rule: a restricted one may not make credentials or trusts).
    application_credential_id: str | None = None
    restricted: bool = False

    # DRF's IsAuthenticated reads request.user.is_authenticated; the context stands in as the user.
    is_authenticated = True

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def scope(self) -> str:
        """The project the token is scoped to; what creates a resource needs one (403 without)."""
        if self.project_id is None:
            raise errors.Forbidden("This action needs a token scoped to a project.")
        return self.project_id
