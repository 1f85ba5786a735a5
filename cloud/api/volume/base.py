"""The Block Storage API's base view: Cinder's microversions (`OpenStack-API-Version: volume 3.x`,
3.0 when absent, echoed back) and its error bodies (Nova's shape, quota as 413 overLimit)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from rest_framework.request import Request
from rest_framework.response import Response

from cloud.api import error_bodies
from cloud.api.base import OpenStackView
from cloud.api.microversion import APIVersion
from cloud.errors import NotAcceptable, NotFound

MIN_VERSION = APIVersion(3, 0)
# What python-openstackclient/openstacksdk (3.71 for volumes, clamped to the server's maximum)
# and Tempest (none, or a class's min_microversion) send all fit.
MAX_VERSION = APIVersion(3, 70)
HEADER = "OpenStack-API-Version"


def requested_version(request: Request) -> APIVersion:
    text = None
    for part in (request.META.get("HTTP_OPENSTACK_API_VERSION") or "").split(","):
        service, _, value = part.strip().partition(" ")
        if service.lower() == "volume" and value.strip():
            text = value.strip()
    if text is None:
        return MIN_VERSION
    if text.lower() == "latest":
        return MAX_VERSION
    version = APIVersion.parse(text)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise NotAcceptable(f"Version {version} is not supported by the API. Minimum is "
                            f"{MIN_VERSION} and maximum is {MAX_VERSION}.")
    return version


class VolumeView(OpenStackView):
    family = error_bodies.VOLUME

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        request.api_version = requested_version(request)
        super().initial(request, *args, **kwargs)

    @property
    def version(self) -> APIVersion:
        return self.request.api_version

    def require_version(self, first: str) -> None:
        """A route that appeared at microversion `first` is missing (404) below it, as in Cinder."""
        if not self.version.at_least(first):
            raise NotFound(f"The resource could not be found (it needs microversion {first}).")

    def finalize_response(self, request: Request, response: Response, *args: Any,
                          **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        version = getattr(request, "api_version", None)
        if version is not None:
            response[HEADER] = f"volume {version}"
            response["Vary"] = HEADER
        return response

    def query(self) -> dict[str, str]:
        return {key: self.request.query_params.get(key, "") for key in self.request.query_params}

    def next_link(self, key: str, ids: list[str]) -> dict[str, list[dict[str, str]]]:
        """Cinder's `<key>_links`: a next page whenever this one is as long as the limit asked
        (so a list whose length the limit divides ends with one empty page)."""
        limit = self.request.query_params.get("limit")
        if not limit or not limit.isdigit() or not ids or len(ids) < int(limit):
            return {}
        query = {k: v for k, v in self.query().items() if k != "marker"}
        query["marker"] = ids[-1]
        href = f"{self.base_url()}{self.request.path}?{urlencode(query)}"
        return {f"{key}_links": [{"rel": "next", "href": href}]}

    def volume_url(self, project_id: str, *parts: str, bookmark: bool = False) -> str:
        prefix = "/volume" if bookmark else "/volume/v3"
        return "/".join([self.base_url() + prefix, project_id, *parts])

    def links(self, project_id: str, *parts: str) -> list[dict[str, str]]:
        return [{"rel": "self", "href": self.volume_url(project_id, *parts)},
                {"rel": "bookmark", "href": self.volume_url(project_id, *parts, bookmark=True)}]
