"""The instances table: filter, sort and page in the database, then decorate one page of rows.

A page costs the same few queries whether the project has ten instances or ten thousand: a COUNT,
the page itself (with its project joined), the names of the page's images and the addresses of its
ports. Nothing is looked up per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import QuerySet

from cloud.compute import guest_kinds, hosts, servers, states
from cloud.compute.models import COMPUTE_BINARY, Instance, InstanceFault, Service
from cloud.compute.operations import Operation
from cloud.identity.context import RequestContext
from cloud.ids import parse_uuid
from cloud.images.models import Image
from cloud.network.models import Port

from . import buttons

PER_PAGE = 25
MAX_PER_PAGE = 100

# Column → ORDER BY; uuid last so that pages never overlap or skip rows.
SORTS: dict[str, tuple[str, ...]] = {
    "name": ("display_name",),
    "status": ("vm_state", "task_state"),
    "created": ("created_at",),
    "host": ("host",),
    "project": ("project__name",),
}
DEFAULT_SORT = "-created"
STATUSES = ["BUILD", "ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "VERIFY_RESIZE", "ERROR"]


@dataclass
class TableQuery:
    q: str = ""
    status: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1
    per_page: int = PER_PAGE

    def params(self, **changes: object) -> str:
        """The query string of this view of the table with some parameters changed."""
        values = {"q": self.q, "status": self.status, "sort": self.sort, "page": self.page,
                  "per_page": self.per_page}
        values.update(changes)
        kept = {k: v for k, v in values.items()
                if v not in ("", None) and not (k == "page" and v == 1)
                and not (k == "sort" and v == DEFAULT_SORT)
                and not (k == "per_page" and v == PER_PAGE)}
        return urlencode(kept)

    def sort_link(self, column: str) -> str:
        """Sorting by a column again reverses it."""
        new = f"-{column}" if self.sort == column else column
        return self.params(sort=new, page=1)

    def sorted_by(self, column: str) -> str:
        """aria-sort for the column's header."""
        if self.sort == column:
            return "ascending"
        if self.sort == f"-{column}":
            return "descending"
        return "none"


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value or default), low), high)
    except ValueError:
        return default


def parse_query(params: Mapping[str, str], *, allow_host: bool = False) -> TableQuery:
    """The table's parameters from a query string; anything unknown falls back to the default."""
    sort = params.get("sort", DEFAULT_SORT)
    allowed = set(SORTS) if allow_host else set(SORTS) - {"host", "project"}
    if sort.lstrip("-") not in allowed:
        sort = DEFAULT_SORT
    status = params.get("status", "").upper()
    return TableQuery(
        q=params.get("q", "").strip()[:255],
        status=status if status in STATUSES else "",
        sort=sort,
        page=_int(params.get("page"), 1, 1, 10**6),
        per_page=_int(params.get("per_page"), PER_PAGE, 5, MAX_PER_PAGE),
    )


@dataclass
class Row:
    instance: Instance
    image_name: str
    addresses: list[str]
    actions: list[Operation] = field(default_factory=list)
    fault: InstanceFault | None = None
    host_silent: bool = False  # its host stopped reporting (host_status UNKNOWN)
    container: bool = False  # a container (libvirt LXC), not a virtual machine
    selectable: bool = False  # a check box for the bulk actions (the user has some)

    @property
    def status(self) -> str:
        return self.instance.status


def filtered(ctx: RequestContext, query: TableQuery, *, all_projects: bool = False) -> QuerySet:
    qs = servers.servers_for(ctx, all_tenants=all_projects).filter(deleted=False)
    if query.q:
        qs = qs.filter(display_name__icontains=query.q)
    if query.status:
        qs = qs.filter(vm_state__in=states.VM_STATES_BY_STATUS.get(query.status, []))
    descending = query.sort.startswith("-")
    order = [("-" if descending else "") + f for f in SORTS[query.sort.lstrip("-")]]
    return qs.select_related("project").order_by(*order, "-uuid" if descending else "uuid")


def decorate(ctx: RequestContext, instances: Iterable[Instance]) -> list[Row]:
    """Rows for a page of instances: image names, addresses and the latest fault of each failed
    one in three queries, which are containers in up to three more, and the actions this user
    may start."""
    instances = list(instances)
    refs = {i.image_ref for i in instances if i.image_ref}
    names = {}
    if refs:
        valid = [r for r in refs if parse_uuid(r) is not None]
        names = {str(pk): name for pk, name in
                 Image.objects.filter(pk__in=valid).values_list("pk", "name")}
    addresses: dict[str, list[str]] = {}
    uuids = [str(i.uuid) for i in instances]
    if uuids:
        for device, fixed in Port.objects.filter(device_id__in=uuids).values_list(
            "device_id", "fixed_ips"
        ):
            addresses.setdefault(device, []).extend(ip["ip_address"] for ip in fixed or [])
    faults: dict[str, InstanceFault] = {}
    failed = [i.uuid for i in instances if i.vm_state == states.ERROR]
    if failed:
        for fault in InstanceFault.objects.filter(instance_id__in=failed).order_by(
            "instance_id", "-created_at", "-id"
        ):
            faults.setdefault(str(fault.instance_id), fault)
    placed = {i.host for i in instances if i.host}
    silent = {
        service.host
        for service in Service.objects.filter(host__in=placed, binary=COMPUTE_BINARY)
        if hosts.host_status(service) == hosts.HOST_UNKNOWN
    } if placed else set()
    selectable = bool(buttons.bulk_operations(ctx))
    containers = guest_kinds.containers(instances)
    return [
        Row(
            instance=i,
            image_name=names.get(i.image_ref, "") or (i.image_ref[:8] if i.image_ref else ""),
            addresses=addresses.get(str(i.uuid), []),
            actions=buttons.offered(ctx, i, host_silent=i.host in silent,
                                    container=str(i.uuid) in containers),
            fault=faults.get(str(i.uuid)),
            host_silent=i.host in silent,
            container=str(i.uuid) in containers,
            selectable=selectable,
        )
        for i in instances
    ]


@dataclass
class TablePage:
    rows: list[Row]
    query: TableQuery
    count: int
    number: int
    num_pages: int
    bulk: list[Operation] = field(default_factory=list)  # what the selected rows may be given

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def first_index(self) -> int:
        return 0 if not self.count else (self.number - 1) * self.query.per_page + 1

    @property
    def last_index(self) -> int:
        return min(self.number * self.query.per_page, self.count)


def instance_page(ctx: RequestContext, query: TableQuery, *, all_projects: bool = False) -> TablePage:
    paginator = Paginator(filtered(ctx, query, all_projects=all_projects), query.per_page)
    page = paginator.get_page(query.page)
    query.page = page.number
    return TablePage(
        rows=decorate(ctx, page.object_list),
        query=query,
        count=paginator.count,
        number=page.number,
        num_pages=paginator.num_pages,
        bulk=buttons.bulk_operations(ctx),
    )


def row_for(ctx: RequestContext, instance_uuid: str) -> Row | None:
    """One row, as the table shows it, of an instance of the context's project (deleted ones
    too, so a page can drop them); None for anything else."""
    if parse_uuid(instance_uuid) is None:
        return None
    instance = (
        servers.servers_for(ctx).filter(pk=instance_uuid).select_related("project").first()
    )
    if instance is None:
        return None
    return decorate(ctx, [instance])[0]
