"""Compute version discovery, readable without a token: the list at /compute/ and one document per
major version, /compute/v2.1/ and the legacy /compute/v2/ that the list links to (clients and
Tempest follow every self link and expect the same link back)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from ..base import PublicView
from ..microversion import MAX_VERSION, MIN_VERSION


class ComputePublicView(PublicView):
    def v20(self) -> dict:
        return {
            "id": "v2.0",
            "status": "SUPPORTED",
            "version": "",
            "min_version": "",
            "updated": "2011-01-21T11:33:21Z",
            "links": [{"rel": "self", "href": f"{self.base_url()}/compute/v2/"}],
        }

    def v21(self) -> dict:
        return {
            "id": "v2.1",
            "status": "CURRENT",
            "version": str(MAX_VERSION),
            "min_version": str(MIN_VERSION),
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{self.base_url()}/compute/v2.1/"}],
        }


def _media_type(version: str) -> list[dict]:
    # Only a single version's document names its media type, as in Nova.
    return [{"base": "application/json",
             "type": f"application/vnd.openstack.compute+json;version={version}"}]


class ComputeRoot(ComputePublicView):
    def get(self, request: Request) -> Response:
        return Response({"versions": [self.v20(), self.v21()]})


class ComputeV20(ComputePublicView):
    def get(self, request: Request) -> Response:
        return Response({"version": {**self.v20(), "media-types": _media_type("2")}})


class ComputeV21(ComputePublicView):
    def get(self, request: Request) -> Response:
        return Response({"version": {**self.v21(), "media-types": _media_type("2.1")}})
