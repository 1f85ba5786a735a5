"""The dashboard for people. So far one page: what a signed-in user's projects are running."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from cloud.compute.models import ComputeNode, Instance
from cloud.identity.models import RoleAssignment


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    project_ids = set(
        RoleAssignment.objects.filter(user=request.user).values_list("project_id", flat=True)
    )
    instances = (
        Instance.objects.filter(project_id__in=project_ids, deleted=False)
        .select_related("project")
        .order_by("-created_at")[:200]
    )
    is_admin = RoleAssignment.objects.filter(user=request.user, role__name="admin").exists()
    nodes = ComputeNode.objects.select_related("service") if is_admin else []
    return render(
        request,
        "dashboard/overview.html",
        {"instances": instances, "nodes": nodes, "is_admin": is_admin},
    )
