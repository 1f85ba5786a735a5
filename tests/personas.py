"""One shared set of people for API tests: an admin, a member and a reader of project alpha, and a
member of project beta. Each persona gets a real token through the identity service."""

from __future__ import annotations

from dataclasses import dataclass

from django.test import Client

from cloud.identity import tokens
from cloud.identity.models import Project, Role, RoleAssignment, User

PASSWORD = "correct-horse-battery"


@dataclass
class Persona:
    user: User
    project: Project
    token: str

    def headers(self, version: str | None = None) -> dict[str, str]:
        headers = {"HTTP_X_AUTH_TOKEN": self.token}
        if version:
            headers["HTTP_OPENSTACK_API_VERSION"] = f"compute {version}"
        return headers


def _role(name: str) -> Role:
    return Role.objects.get_or_create(name=name)[0]


def make_persona(name: str, project_name: str, roles: list[str]) -> Persona:
    project = Project.objects.get_or_create(name=project_name)[0]
    user = User.objects.filter(name=name).first() or User.objects.create_user(name, PASSWORD)
    for role in roles:
        RoleAssignment.objects.get_or_create(user=user, project=project, role=_role(role))
    issued = tokens.issue(user, project, ["password"])
    return Persona(user=user, project=project, token=issued.token)


class Api:
    """A thin JSON client over Django's test client, speaking as one persona."""

    def __init__(self, persona: Persona | None, version: str | None = None):
        self.client = Client()
        self.persona = persona
        self.version = version

    def _headers(self, version: str | None) -> dict[str, str]:
        version = version or self.version
        if self.persona is None:
            return {"HTTP_OPENSTACK_API_VERSION": f"compute {version}"} if version else {}
        return self.persona.headers(version)

    def get(self, path: str, version: str | None = None, **extra):
        return self.client.get(path, **self._headers(version), **extra)

    def post(self, path: str, body=None, version: str | None = None, raw: str | None = None):
        data = raw if raw is not None else ("" if body is None else __import__("json").dumps(body))
        return self.client.post(
            path, data=data, content_type="application/json", **self._headers(version)
        )

    def put(self, path: str, body=None, version: str | None = None, **extra):
        import json

        return self.client.put(
            path, data=json.dumps(body), content_type="application/json",
            **self._headers(version), **extra,
        )

    def delete(self, path: str, version: str | None = None):
        return self.client.delete(path, **self._headers(version))
