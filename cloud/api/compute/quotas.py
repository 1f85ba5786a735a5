"""/os-quota-sets/{project_id}: show, defaults, detail (with usage), update and reset; each but the
defaults for one user within the project with ?user_id= (Nova's per-user quotas: the user's limits
over the project's, never above them).

Shapes by microversion: the network quotas (fixed_ips, floating_ips, security_groups,
security_group_rules) disappear at 2.36 and the personality ones (injected_*) at 2.57, both from
the bodies and from what PUT accepts.
"""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import quotas

from ..base import ComputeView, Versioned
from ..microversion import APIVersion

NETWORK_QUOTAS = ("fixed_ips", "floating_ips", "security_groups", "security_group_rules")
PERSONALITY_QUOTAS = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")

# The strings Nova's boolean parameter type accepts, besides true and false.
_BOOL_STRINGS = [
    "1", "t", "true", "True", "TRUE", "on", "On", "ON", "y", "yes", "Yes", "YES",
    "0", "f", "false", "False", "FALSE", "off", "Off", "OFF", "n", "no", "No", "NO",
]
_TRUE_STRINGS = {"1", "t", "true", "on", "y", "yes"}


def resources_at(version: APIVersion) -> tuple[str, ...]:
    hidden: tuple[str, ...] = ()
    if version.at_least("2.36"):
        hidden += NETWORK_QUOTAS
    if version.at_least("2.57"):
        hidden += PERSONALITY_QUOTAS
    return tuple(r for r in quotas.RESOURCES if r not in hidden)


def _update_schema(resources: tuple[str, ...]) -> dict:
    limit = {"type": ["integer", "string"], "pattern": r"^-?[0-9]+$"}
    return {
        "type": "object",
        "required": ["quota_set"],
        "properties": {
            "quota_set": {
                "type": "object",
                "properties": {
                    **dict.fromkeys(resources, limit),
                    "force": {"type": ["boolean", "string"], "enum": [True, False, *_BOOL_STRINGS]},
                },
                "additionalProperties": False,
            }
        },
        "additionalProperties": False,
    }


# The resources a quota set names change at 2.36 (network quotas gone) and 2.57 (personality).
_UPDATE = Versioned(*(
    (version, _update_schema(resources_at(APIVersion.parse(version))))
    for version in ("2.1", "2.36", "2.57")
))


def _is_true(value: bool | str) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in _TRUE_STRINGS)


class QuotaView(ComputeView):
    def authorize_project(self, rule: str, project_id: str) -> None:
        """Readers see their own project's quotas; anyone else's need an admin (403, as Nova)."""
        self.authorize(rule)
        if project_id != self.ctx.project_id:
            self.authorize("compute:quotas:other_project")

    def shaped(self, values: dict) -> dict:
        return {r: values[r] for r in resources_at(self.version)}


class QuotaSetItem(QuotaView):
    body_schemas = {"PUT": _UPDATE}
    query_params = {"GET": ("user_id",), "PUT": ("user_id",), "DELETE": ("user_id",)}

    def get(self, request: Request, project_id: str) -> Response:
        self.authorize_project("compute:quotas:show", project_id)
        limits = quotas.limits_for(project_id, _user_id(request))
        return Response({"quota_set": {"id": project_id, **self.shaped(limits)}})

    def put(self, request: Request, project_id: str) -> Response:
        self.authorize("compute:quotas:update")
        values = dict(self.valid_body("quota_set"))
        force = _is_true(values.pop("force", False))
        values = {k: int(v) for k, v in values.items()}
        user_id = _user_id(request)
        if user_id:
            limits = quotas.update_user_limits(project_id, user_id, values, force=force)
        else:
            limits = quotas.update_limits(project_id, values, force=force)
        return Response({"quota_set": self.shaped(limits)})

    def delete(self, request: Request, project_id: str) -> Response:
        self.authorize("compute:quotas:delete")
        user_id = _user_id(request)
        if user_id:
            quotas.reset_user_limits(project_id, user_id)
        else:
            quotas.reset_limits(project_id)
        return Response(status=202)


def _user_id(request: Request) -> str | None:
    """The user a request is about (?user_id=); empty is none, as Nova reads it."""
    return request.query_params.get("user_id") or None


class QuotaSetDefaults(QuotaView):
    def get(self, request: Request, project_id: str) -> Response:
        self.authorize("compute:quotas:defaults")
        defaults = quotas.default_limits()
        return Response({"quota_set": {"id": project_id, **self.shaped(defaults)}})


class QuotaSetDetail(QuotaView):
    query_params = {"GET": ("user_id",)}

    def get(self, request: Request, project_id: str) -> Response:
        self.authorize_project("compute:quotas:detail", project_id)
        user_id = _user_id(request)
        if user_id:
            # One user's limits, and what that user's servers and key pairs use.
            limits = quotas.limits_for(project_id, user_id)
            used = quotas.usage(project_id, user_id, users_servers=True)
        else:
            # Key pairs are counted per user: the caller's, when the caller is in that project.
            own = project_id == self.ctx.project_id
            limits, used = quotas.limits_and_usage(project_id, self.ctx.user_id if own else None)
        detail = {
            r: {"in_use": used[r], "limit": limits[r], "reserved": 0}
            for r in resources_at(self.version)
        }
        return Response({"quota_set": {"id": project_id, **detail}})


# Quota classes (os-quota-class-sets): before 2.50 without the server group quotas and with the
# network ones; from 2.57 without the personality ones.
def class_resources_at(version: APIVersion) -> tuple[str, ...]:
    hidden: tuple[str, ...] = ()
    if version.at_least("2.50"):
        hidden += NETWORK_QUOTAS
    else:
        hidden += ("server_groups", "server_group_members")
    if version.at_least("2.57"):
        hidden += PERSONALITY_QUOTAS
    return tuple(r for r in quotas.RESOURCES if r not in hidden)


def _class_schema(resources: tuple[str, ...]) -> dict:
    limit = {"type": ["integer", "string"], "pattern": r"^-?[0-9]+$"}
    return {
        "type": "object",
        "required": ["quota_class_set"],
        "properties": {"quota_class_set": {
            "type": "object",
            "properties": dict.fromkeys(resources, limit),
            "additionalProperties": False,
        }},
        "additionalProperties": False,
    }


_CLASS_UPDATE = Versioned(*(
    (version, _class_schema(class_resources_at(APIVersion.parse(version))))
    for version in ("2.1", "2.50", "2.57")
))


class QuotaClassSet(ComputeView):
    """GET and PUT /os-quota-class-sets/{class} (admins): the "default" class is every project's
    default limits; other classes are kept and shown, and apply to no project (as in Nova)."""

    body_schemas = {"PUT": _CLASS_UPDATE}

    def shaped(self, values: dict) -> dict:
        return {r: values[r] for r in class_resources_at(self.version)}

    def get(self, request: Request, class_name: str) -> Response:
        self.authorize("compute:quota_classes:show")
        limits = quotas.class_limits(class_name)
        return Response({"quota_class_set": {"id": class_name, **self.shaped(limits)}})

    def put(self, request: Request, class_name: str) -> Response:
        self.authorize("compute:quota_classes:update")
        if not 1 <= len(class_name) <= 255:
            raise errors.BadRequest("quota_class_name has to be 1 to 255 characters long.")
        values = self.valid_body("quota_class_set")
        limits = quotas.update_class_limits(class_name, {k: int(v) for k, v in values.items()})
        return Response({"quota_class_set": self.shaped(limits)})


urlpatterns = [
    path("/os-quota-class-sets/<str:class_name>", QuotaClassSet.as_view()),
    path("/os-quota-sets/<str:project_id>", QuotaSetItem.as_view()),
    path("/os-quota-sets/<str:project_id>/defaults", QuotaSetDefaults.as_view()),
    path("/os-quota-sets/<str:project_id>/detail", QuotaSetDetail.as_view()),
]
