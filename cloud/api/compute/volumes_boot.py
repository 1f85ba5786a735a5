"""/os-volumes_boot: an old alias of /servers (create, list, show, update, delete, actions), as in
Nova until 2.102; removed at 2.103 (404)."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request

from cloud import errors

from . import server_actions, servers


class _UntilRemoved:
    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if request.api_version.at_least("2.103"):
            raise errors.NotFound("The resource could not be found.")


class BootList(_UntilRemoved, servers.ServerList):
    pass


class BootDetailList(_UntilRemoved, servers.ServerDetailList):
    pass


class BootItem(_UntilRemoved, servers.ServerItem):
    pass


class BootAction(_UntilRemoved, server_actions.ServerAction):
    pass


urlpatterns = [
    path("/os-volumes_boot", BootList.as_view()),
    path("/os-volumes_boot/detail", BootDetailList.as_view()),
    path("/os-volumes_boot/<str:server_id>", BootItem.as_view()),
    path("/os-volumes_boot/<str:server_id>/action", BootAction.as_view()),
]
