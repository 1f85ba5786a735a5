"""Compute version discovery, readable without a token."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from ..base import PublicView
from ..microversion import MAX_VERSION, MIN_VERSION


class ComputePublicView(PublicView):
    def v21(self) -> dict:
        return {
            "id": "v2.1",
            "status": "CURRENT",
            "version": str(MAX_VERSION),
            "min_version": str(MIN_VERSION),
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{self.base_url()}/compute/v2.1/"}],
            "media-types": [
                {
                    "base": "application/json",
                    "type": "application/vnd.openstack.compute+json;version=2.1",
                }
            ],
        }


class ComputeRoot(ComputePublicView):
    def get(self, request: Request) -> Response:
        v20 = {
            "id": "v2.0",
            "status": "SUPPORTED",
            "version": "",
            "min_version": "",
            "updated": "2011-01-21T11:33:21Z",
            "links": [{"rel": "self", "href": f"{self.base_url()}/compute/v2/"}],
        }
        return Response({"versions": [v20, self.v21()]})


class ComputeV21(ComputePublicView):
    def get(self, request: Request) -> Response:
        return Response({"version": self.v21()})
