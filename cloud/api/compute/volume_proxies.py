"""The volume and bare-metal APIs Nova proxied until 2.35 (404 from 2.36): os-volumes and
os-snapshots, which this cloud, without a volume service, answers with none (lists empty, any id
not found, creating refused), and os-baremetal-nodes, of which it has none either (admins).
os-assisted-volume-snapshots (admins, any version) finds no volume."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors

from ..base import ComputeView
from . import params

_NO_VOLUMES = "This cloud has no volume service."


class _ProxyView(ComputeView):
    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if self.version.at_least("2.36"):
            raise errors.NotFound("The resource could not be found.")


def _listing(key: str) -> type[_ProxyView]:
    class Listing(_ProxyView):
        query_params = {"GET": ("limit", "offset")}

        def get(self, request: Request) -> Response:
            self.authorize("compute:volumes")
            params.limit_param(request.query_params)  # a malformed page is still a 400
            params.count_param(request.query_params, "offset")
            return Response({key: []})

        def post(self, request: Request) -> Response:
            self.authorize("compute:volumes")
            raise errors.BadRequest(_NO_VOLUMES)

    return Listing


def _item(kind: str) -> type[_ProxyView]:
    class Item(_ProxyView):
        def get(self, request: Request, item_id: str) -> Response:
            self.authorize("compute:volumes")
            raise errors.NotFound(f"{kind} {item_id} could not be found.")

        delete = get

    return Item


class BaremetalNodes(_ProxyView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:baremetal_nodes")
        return Response({"nodes": []})


class BaremetalNode(_ProxyView):
    def get(self, request: Request, node_id: str) -> Response:
        self.authorize("compute:baremetal_nodes")
        raise errors.NotFound(f"Node {node_id} could not be found.")


class AssistedSnapshots(ComputeView):
    def post(self, request: Request) -> Response:
        self.authorize("compute:assisted_volume_snapshots")
        raise errors.BadRequest(_NO_VOLUMES)


class AssistedSnapshot(ComputeView):
    def delete(self, request: Request, snapshot_id: str) -> Response:
        self.authorize("compute:assisted_volume_snapshots")
        raise errors.NotFound(f"Snapshot {snapshot_id} could not be found.")


urlpatterns = [
    path("/os-volumes", _listing("volumes").as_view()),
    path("/os-volumes/detail", _listing("volumes").as_view()),
    path("/os-volumes/<str:item_id>", _item("Volume").as_view()),
    path("/os-snapshots", _listing("snapshots").as_view()),
    path("/os-snapshots/detail", _listing("snapshots").as_view()),
    path("/os-snapshots/<str:item_id>", _item("Snapshot").as_view()),
    path("/os-baremetal-nodes", BaremetalNodes.as_view()),
    path("/os-baremetal-nodes/<str:node_id>", BaremetalNode.as_view()),
    path("/os-assisted-volume-snapshots", AssistedSnapshots.as_view()),
    path("/os-assisted-volume-snapshots/<str:snapshot_id>", AssistedSnapshot.as_view()),
]
