"""API access (Horizon's Project → API Access): the catalog's endpoints as the signed-in user's
token shows them, the openrc and clouds.yaml files the OpenStack clients read, and the user's EC2
credentials on the selected project with an ec2rc.sh for the AWS CLI and boto3.

An EC2 secret is a password: it is shown only in the answer to a POST that asks for it (reveal, or
the ec2rc.sh download), never in a URL, a flash message (those ride in a cookie or the session)
or a log line, and those answers are marked no-store. Credentials are the user's own: even an
admin sees only theirs here, as `openstack ec2 credentials list` does. The rules are the OS-EC2
API's (identity:ec2_credentials:*), so a click and `openstack ec2 credentials create` agree.

ec2rc.sh is one plain file, not Horizon's zip: Horizon's zip carries the X.509 certificates
euca2ools needed for bundling images (nova-cert), which Kumo does not have, so the zip would hold
only this script; a plain file is sourced as downloaded.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cloud import errors
from cloud.identity import catalog, credentials, policy
from cloud.identity.context import RequestContext

from .context import authorize, dashboard_view

PAGE = "/api-access/"
DOMAIN_NAME = "Default"  # Kumo's one domain (id "default"), by the name the clients send


@dataclass(frozen=True)
class EndpointRow:
    name: str
    type: str
    region: str
    url: str


@dataclass(frozen=True)
class Ec2Settings:
    url: str
    region: str


def _public_base(request: HttpRequest) -> str:
    # What the API's own catalog answers with (cloud/api/base.py): the configured public URL,
    # else the origin the browser used, so the URLs shown are ones this browser can reach.
    if settings.KUMO_PUBLIC_URL:
        return settings.KUMO_PUBLIC_URL.rstrip("/")
    return f"{request.scheme}://{request.get_host()}"


def endpoints(request: HttpRequest, ctx: RequestContext) -> list[EndpointRow]:
    """The public endpoint of each service of the catalog a token on `ctx`'s project carries."""
    rows = []
    for service in catalog.catalog(_public_base(request), ctx.project_id):
        for endpoint in service["endpoints"]:
            if endpoint["interface"] == "public":
                rows.append(EndpointRow(service["name"], service["type"],
                                        endpoint["region"] or "", endpoint["url"]))
    return sorted(rows, key=lambda r: (r.type, r.name, r.region))


def _first(rows: list[EndpointRow], service_type: str) -> EndpointRow | None:
    return next((r for r in rows if r.type == service_type), None)


def ec2_settings(rows: list[EndpointRow], request: HttpRequest) -> Ec2Settings:
    """The EC2 endpoint and region clients should use: the catalog's, else Kumo's own path."""
    row = _first(rows, "ec2")
    if row is None:
        return Ec2Settings(_public_base(request) + "/ec2", settings.KUMO_REGION)
    return Ec2Settings(row.url, row.region or settings.KUMO_REGION)


def _auth_url(rows: list[EndpointRow], request: HttpRequest) -> str:
    row = _first(rows, "identity")
    url = (row.url if row is not None else _public_base(request) + "/identity").rstrip("/")
    return url if url.endswith("/v3") else url + "/v3"


def _region(rows: list[EndpointRow]) -> str:
    row = _first(rows, "identity")
    return row.region if row is not None and row.region else settings.KUMO_REGION


def _said(name: str | None) -> str:
    """A name inside a comment line of a shell file: a newline in a project's name would end the
    comment and run the rest when the file is sourced."""
    return "".join(c if c.isprintable() else "?" for c in name or "")


def render_openrc(ctx: RequestContext, auth_url: str, region: str) -> str:
    """An openrc for the OpenStack clients. It holds no password: it asks for it when sourced,
    so the file can be kept and shared like a configuration file."""
    q = shlex.quote
    return "\n".join([
        f"# OpenStack clients as {_said(ctx.user_name)} on project {_said(ctx.project_name)}.",
        "# Use with: source <this file>; openstack server list",
        f"export OS_AUTH_URL={q(auth_url)}",
        f"export OS_USERNAME={q(ctx.user_name)}",
        f"export OS_USER_DOMAIN_NAME={q(DOMAIN_NAME)}",
        f"export OS_PROJECT_ID={q(ctx.scope)}",
        f"export OS_PROJECT_NAME={q(ctx.project_name or '')}",
        f"export OS_PROJECT_DOMAIN_NAME={q(DOMAIN_NAME)}",
        # Variables of Keystone v2 would win over these in some clients.
        "unset OS_TENANT_ID OS_TENANT_NAME",
        # The prompt on stderr: stdout stays the caller's.
        'printf "Password of %s on project %s: " "$OS_USERNAME" "$OS_PROJECT_NAME" >&2',
        "read -sr OS_PASSWORD_INPUT; echo >&2",
        'export OS_PASSWORD="$OS_PASSWORD_INPUT"',
        "unset OS_PASSWORD_INPUT",
        f"export OS_REGION_NAME={q(region)}",
        "export OS_INTERFACE=public",
        "export OS_IDENTITY_API_VERSION=3",
    ]) + "\n"


def render_clouds_yaml(ctx: RequestContext, auth_url: str, region: str) -> str:
    """clouds.yaml for openstacksdk and the openstack client (`--os-cloud kumo`); no password,
    as Horizon's: add `password:` under auth, or keep it in secure.yaml."""
    s = json.dumps  # a JSON string is a YAML string, with every quote and backslash escaped
    return "\n".join([
        "# openstack --os-cloud kumo server list (add your password under auth, or secure.yaml)",
        "clouds:",
        "  kumo:",
        "    auth:",
        f"      auth_url: {s(auth_url)}",
        f"      username: {s(ctx.user_name)}",
        f"      user_domain_name: {s(DOMAIN_NAME)}",
        f"      project_id: {s(ctx.scope)}",
        f"      project_name: {s(ctx.project_name or '')}",
        f"      project_domain_name: {s(DOMAIN_NAME)}",
        f"    region_name: {s(region)}",
        "    interface: public",
        "    identity_api_version: 3",
    ]) + "\n"


def render_ec2rc(ctx: RequestContext, pair: credentials.Ec2Pair, ec2: Ec2Settings) -> str:
    """ec2rc.sh: the euca2ools names Horizon's file exports, and the AWS ones the AWS CLI and
    boto3 read, including the per-service endpoint variable they honour (AWS CLI 2.13+, boto3
    1.28+), so `aws ec2 …` reaches Kumo with no --endpoint-url."""
    q = shlex.quote
    return "\n".join([
        f"# EC2 credentials of {_said(ctx.user_name)} on project {_said(ctx.project_name)}.",
        "# Keep this file private: it holds the secret key.",
        "# Use with: source ec2rc.sh; aws ec2 describe-instances",
        "# Older AWS CLIs ignore AWS_ENDPOINT_URL_EC2:",
        f"#   aws --endpoint-url {q(ec2.url)} ec2 describe-instances",
        f"export EC2_ACCESS_KEY={q(pair.access)}",
        f"export EC2_SECRET_KEY={q(pair.secret)}",
        f"export EC2_URL={q(ec2.url)}",
        f"export AWS_ACCESS_KEY_ID={q(pair.access)}",
        f"export AWS_SECRET_ACCESS_KEY={q(pair.secret)}",
        f"export AWS_DEFAULT_REGION={q(ec2.region)}",
        f"export AWS_ENDPOINT_URL_EC2={q(ec2.url)}",
    ]) + "\n"


def _attachment(text: str, filename: str, content_type: str, *, secret: bool) -> HttpResponse:
    response = HttpResponse(text, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    if secret:
        response["Cache-Control"] = "no-store"
    return response


def _filename_part(name: str) -> str:
    # A project name may hold anything; a download's name keeps only what is safe everywhere.
    kept = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(".-")
    return kept or "project"


def _project_pairs(ctx: RequestContext) -> list[credentials.Ec2Pair]:
    """The user's own EC2 credentials on the selected project (list_ec2 gives every project's)."""
    return [p for p in credentials.list_ec2(ctx, ctx.user_id) if p.project_id == ctx.project_id]


def _own_pair(ctx: RequestContext, access: str) -> credentials.Ec2Pair:
    if not access:
        raise errors.BadRequest("Choose an EC2 credential (its access key).")
    pair = credentials.get_ec2(ctx, ctx.user_id, access)
    if pair.project_id != ctx.project_id:
        # Listed under its own project; here it is as missing as any other.
        raise errors.NotFound(f"Could not find credential: {access}.")
    return pair


def _page(request: HttpRequest, ctx: RequestContext, *,
          revealed: credentials.Ec2Pair | None = None) -> HttpResponse:
    rows = endpoints(request, ctx)
    can_list = policy.allowed(ctx, "identity:ec2_credentials:list")
    response = render(request, "dashboard/api_access.html", {
        "endpoints": rows,
        "ec2": ec2_settings(rows, request),
        "can_list": can_list,
        # Access keys only: the secrets list_ec2 decrypted never reach the template.
        "access_keys": [p.access for p in _project_pairs(ctx)] if can_list else [],
        "revealed": revealed,
    })
    if revealed is not None:
        response["Cache-Control"] = "no-store"
    return response


@require_GET
@dashboard_view()
def api_access(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    return _page(request, ctx)


@require_GET
@dashboard_view()
def openrc(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    rows = endpoints(request, ctx)
    return _attachment(render_openrc(ctx, _auth_url(rows, request), _region(rows)),
                       f"{_filename_part(ctx.project_name or '')}-openrc.sh", "text/x-shellscript",
                       secret=False)


@require_GET
@dashboard_view()
def clouds_yaml(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    rows = endpoints(request, ctx)
    return _attachment(render_clouds_yaml(ctx, _auth_url(rows, request), _region(rows)),
                       "clouds.yaml", "application/yaml", secret=False)


@require_POST
@dashboard_view("identity:ec2_credentials:create")
def ec2_create(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    pair = credentials.create_ec2(ctx, ctx.user_id, ctx.scope)
    messages.success(request, f"EC2 credential {pair.access} created. Show its secret or "
                              "download its ec2rc.sh below.")
    return redirect(PAGE)


@require_POST
@dashboard_view("identity:ec2_credentials:show")
def ec2_reveal(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    return _page(request, ctx, revealed=_own_pair(ctx, request.POST.get("access", "")))


@require_POST
@dashboard_view("identity:ec2_credentials:show")
def ec2rc(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    """The ec2rc.sh of the credential asked for; with none named, Horizon's "Download EC2
    Credentials": the project's first credential, or a new one when it has none."""
    access = request.POST.get("access", "")
    if access:
        pair = _own_pair(ctx, access)
    else:
        authorize(ctx, "identity:ec2_credentials:list")
        pairs = _project_pairs(ctx)
        if pairs:
            pair = pairs[0]
        else:
            authorize(ctx, "identity:ec2_credentials:create")
            pair = credentials.create_ec2(ctx, ctx.user_id, ctx.scope)
    ec2 = ec2_settings(endpoints(request, ctx), request)
    return _attachment(render_ec2rc(ctx, pair, ec2), "ec2rc.sh", "text/x-shellscript",
                       secret=True)


@require_http_methods(["GET", "POST"])
@dashboard_view("identity:ec2_credentials:delete")
def ec2_delete(request: HttpRequest, ctx: RequestContext, access: str) -> HttpResponse:
    pair = _own_pair(ctx, access)
    if request.method == "POST":
        credentials.delete_ec2(ctx, ctx.user_id, pair.access)
        messages.success(request, f"EC2 credential {pair.access} deleted.")
        return redirect(PAGE)
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete EC2 credential {pair.access}?",
        "question": "Every request signed with it fails from now on (AuthFailure), including "
                    "those of scripts that sourced its ec2rc.sh.",
        "button": "Delete EC2 credential",
        "cancel": PAGE,
    })
