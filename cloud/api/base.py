"""The shared base views: one per API family, so concrete views are mostly declarations.

A view declares what it reads: `body_schemas`, the JSON Schema of each method's request body, which
`valid_body()` validates with, and `query_params`, the names of the query parameters each method
reads. /openapi.json (cloud/api/openapi.py) is generated from the same declarations.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cloud import errors
from cloud.api import error_bodies
from cloud.compute import servers
from cloud.compute.models import Instance
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.validation import validate

from .microversion import APIVersion, requested_version, version_headers

Schema = dict[str, Any]


class Versioned:
    """A compute request body that changed with the microversion: (first version, schema) pairs,
    oldest first; a request is validated with the newest its version has reached."""

    def __init__(self, *steps: tuple[str, Schema]) -> None:
        self.steps = [(APIVersion.parse(since), schema) for since, schema in steps]

    def at(self, version: APIVersion) -> Schema:
        chosen = self.steps[0][1]
        for since, schema in self.steps:
            if version >= since:
                chosen = schema
        return chosen

    def schemas(self) -> list[Schema]:
        return [schema for _, schema in self.steps]


class OpenStackView(APIView):
    family = error_bodies.COMPUTE
    # By HTTP method: the JSON Schema of the request body (validated by valid_body()).
    body_schemas: ClassVar[dict[str, Schema | Versioned]] = {}
    # By HTTP method: the query parameters it reads (their schemas: cloud/api/openapi.py).
    query_params: ClassVar[dict[str, tuple[str, ...]]] = {}
    # By HTTP method: the request headers it requires besides the token.
    header_params: ClassVar[dict[str, tuple[str, ...]]] = {}
    # The methods served without a token (every one of a PublicView's).
    public_methods: ClassVar[tuple[str, ...]] = ()

    def get_authenticators(self) -> list:
        if self.request is not None and self.request.method in self.public_methods:
            return []
        return super().get_authenticators()

    def get_permissions(self) -> list:
        if self.request.method in self.public_methods:
            return []
        return super().get_permissions()

    @property
    def ctx(self) -> RequestContext:
        return self.request.auth

    def body(self, key: str | None = None) -> Any:
        """The JSON body (or its `key` member), which must be an object."""
        data = self.request.data
        if not isinstance(data, dict):
            raise errors.BadRequest("The request body must be a JSON object.")
        if key is None:
            return data
        if key not in data or not isinstance(data[key], dict):
            raise errors.BadRequest(f"Missing or malformed '{key}' in the request body.")
        return data[key]

    def valid_body(self, key: str | None = None) -> Any:
        """The JSON body (or its `key` member), validated with the schema this view declares for
        the request's method."""
        body = self.body()
        validate(self.body_schema(), body)
        return body if key is None else body[key]

    def body_schema(self) -> Schema:
        schema = self.body_schemas[self.request.method]
        assert not isinstance(schema, Versioned), "only compute bodies change with a microversion"
        return schema

    def authorize(self, action: str) -> None:
        if not policy.allowed(self.ctx, action):
            raise errors.Forbidden(f"Policy doesn't allow {action} to be performed.")

    def base_url(self) -> str:
        # Every link of every server of a list starts with it: worked out once per request
        # (get_host() checks ALLOWED_HOSTS each time it is called).
        cached = getattr(self, "_base_url", None)
        if cached is None:
            if settings.KUMO_PUBLIC_URL:
                cached = settings.KUMO_PUBLIC_URL.rstrip("/")
            else:
                cached = f"{self.request.scheme}://{self.request.get_host()}"
            self._base_url = cached
        return cached


class PublicView(OpenStackView):
    """Discovery documents: clients fetch them without a token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


class ComputeView(OpenStackView):
    family = error_bodies.COMPUTE
    # From this microversion a query parameter the view does not declare is refused (400): every
    # compute API from 2.102 (Nova's rule), some from 2.75. Below it, unknown ones are ignored.
    strict_query_from: ClassVar[str] = "2.102"

    def initial(self, request: Request, *args, **kwargs) -> None:
        request.api_version = requested_version(request)
        self.refuse_unknown_query(request)
        super().initial(request, *args, **kwargs)

    def refuse_unknown_query(self, request: Request) -> None:
        if not request.api_version.at_least(self.strict_query_from):
            return
        method = "GET" if request.method == "HEAD" else request.method
        unknown = sorted(set(request.query_params) - set(self.query_params.get(method, ())))
        if unknown:
            raise errors.BadRequest(
                f"Invalid input for query parameters {unknown[0]}. Additional properties are not "
                f"allowed ('{unknown[0]}' was unexpected)")

    @property
    def version(self) -> APIVersion:
        return self.request.api_version

    def body_schema(self) -> Schema:
        schema = self.body_schemas[self.request.method]
        return schema.at(self.version) if isinstance(schema, Versioned) else schema

    def finalize_response(self, request: Request, response: Response, *args, **kwargs) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        version = getattr(request, "api_version", None)
        if version is not None:
            for name, value in version_headers(version).items():
                response[name] = value
        return response

    def require_version(self, first: str) -> None:
        """A route that appeared at microversion `first` is missing (404) below it, as in Nova."""
        if not self.version.at_least(first):
            raise errors.NotFound("The resource could not be found.")

    def authorized_server(self, server_id: str, rule: str) -> Instance:
        """The server, looked up in the caller's project before the rule is checked, as Nova does:
        another project's server is missing (404) whatever the caller's role, and only a server
        the caller can see may be refused (403)."""
        instance = servers.get_server(self.ctx, server_id)
        self.authorize(rule)
        return instance

    def compute_url(self, *parts: str, bookmark: bool = False) -> str:
        prefix = "/compute" if bookmark else "/compute/v2.1"
        return "/".join([self.base_url() + prefix, *parts])


class IdentityView(OpenStackView):
    family = error_bodies.IDENTITY


class ImageView(OpenStackView):
    family = error_bodies.IMAGE


class NetworkView(OpenStackView):
    family = error_bodies.NETWORK
