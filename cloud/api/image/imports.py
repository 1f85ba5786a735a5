"""Glance's interoperable import over HTTP: the import methods on offer, staging, importing, and
the tasks that record imports (cloud.images.imports)."""

from __future__ import annotations

from datetime import datetime

from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.images import imports
from cloud.images.models import ImageTask

from .views import _OCTET_STREAM, GlanceView, upload_body


def _iso(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if dt else None


def task_body(task: ImageTask, *, detail: bool = True) -> dict:
    body = {
        "id": str(task.id),
        "type": task.type,
        "status": task.status,
        "owner": task.owner_id,
        "expires_at": _iso(task.expires_at),
        "created_at": _iso(task.created_at),
        "updated_at": _iso(task.updated_at),
        "self": f"/v2/tasks/{task.id}",
        "schema": "/v2/schemas/task",
    }
    if detail:
        body.update(input=task.input, result=task.result, message=task.message)
    return body


def image_task_body(task: ImageTask) -> dict:
    """A task as the image's task list (Glance 2.12) shows it: who and which request."""
    body = task_body(task)
    del body["self"], body["schema"]
    body.update(
        image_id=str(task.image_id) if task.image_id else None,
        request_id=task.request_id,
        user_id=task.user_id,
    )
    return body


class ImportInfo(GlanceView):
    """The import methods this cloud offers."""

    def get(self, request: Request) -> Response:
        self.authorize("image:import_info")
        return Response(
            {
                "import-methods": {
                    "description": "Import methods available.",
                    "type": "array",
                    "value": list(imports.IMPORT_METHODS),
                }
            }
        )


class ImageStage(GlanceView):
    def put(self, request: Request, image_id: str) -> Response:
        content_type = request.content_type.split(";")[0].strip()
        if content_type and content_type != _OCTET_STREAM:
            raise errors.UnsupportedMedia(f"Image data must be sent as {_OCTET_STREAM}.")
        chunks, content_length = upload_body(request)
        imports.stage_image(self.ctx, image_id, chunks, content_length)
        return Response(status=204)


class ImageImport(GlanceView):
    body_schemas = {"POST": imports.IMPORT_SCHEMA}

    def post(self, request: Request, image_id: str) -> Response:
        imports.import_image(self.ctx, image_id, self.body())
        return Response(status=202)


class ImageTasks(GlanceView):
    def get(self, request: Request, image_id: str) -> Response:
        tasks = imports.image_tasks(self.ctx, image_id)
        return Response({"tasks": [image_task_body(t) for t in tasks]})


class Tasks(GlanceView):
    body_schemas = {"POST": imports.TASK_SCHEMA}
    query_params = {"GET": ("type", "status")}

    def get(self, request: Request) -> Response:
        params = {k: request.query_params[k] for k in ("type", "status")
                  if k in request.query_params}
        tasks = imports.list_tasks(self.ctx, params)
        return Response(
            {
                "tasks": [task_body(t, detail=False) for t in tasks],
                "first": "/v2/tasks",
                "schema": "/v2/schemas/tasks",
            }
        )

    def post(self, request: Request) -> Response:
        task = imports.create_task(self.ctx, self.body())
        return Response(task_body(task), status=201)


class TaskDetail(GlanceView):
    def get(self, request: Request, task_id: str) -> Response:
        return Response(task_body(imports.get_task(self.ctx, task_id)))
