"""Template helpers: policy checks, usage percentages and sizes."""

from __future__ import annotations

from django import template

from cloud.identity import policy
from cloud.identity.context import RequestContext

register = template.Library()


@register.filter
def can(ctx: RequestContext | None, rule: str) -> bool:
    """{% if ctx|can:"compute:servers:create" %}: the policy table, as the server enforces it."""
    return ctx is not None and policy.allowed(ctx, rule)


@register.filter
def percent(used: float | None, total: float | None) -> int:
    """Whole percent of `used` in `total`, 0..100 (an unlimited or empty total shows 0)."""
    if not total or total < 0 or not used:
        return 0
    return max(0, min(100, round(100 * used / total)))


@register.filter
def filesize(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


@register.filter
def mib(value: int | None) -> str:
    """MiB as people read them: 512 MiB, 2 GiB."""
    if value is None:
        return "—"
    if value >= 1024 and value % 1024 == 0:
        return f"{value // 1024} GiB"
    if value >= 1024:
        return f"{value / 1024:.1f} GiB"
    return f"{value} MiB"


@register.simple_tag
def query(table_query, **changes) -> str:
    """The instance table's query string with some parameters changed."""
    return table_query.params(**changes)


@register.simple_tag
def sort_query(table_query, column: str) -> str:
    """The query string that sorts the table by `column` (again: the other way round)."""
    return table_query.sort_link(column)


@register.simple_tag
def sort_state(table_query, column: str) -> str:
    return table_query.sorted_by(column)
