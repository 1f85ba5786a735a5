"""What every Describe* shares: `Filter.N.Name`/`Filter.N.Value.M` (AND across filters, OR across
one filter's values, `*` and `?` as wildcards, `tag:Key` and `tag-key` on tagged resources), and
`MaxResults`/`NextToken` paging.

An action describes each resource as a dict and names, per filter, how to read the values it
matches from that dict (`Filters`); an unknown filter name is EC2's InvalidParameterValue.
"""

from __future__ import annotations

import base64
import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

from .errors import Ec2Error, invalid
from .params import Params

# A filter reads the value(s) it compares from one described item.
Reader = Callable[[dict[str, Any]], Iterable[Any] | Any]
Filters = dict[str, Reader]


def path(*keys: str) -> Reader:
    """A reader of the value at `keys` in the item (lists along the way are searched)."""
    def read(item: Any) -> list[Any]:
        found = [item]
        for key in keys:
            nxt: list[Any] = []
            for node in found:
                if isinstance(node, list):
                    nxt.extend(n.get(key) for n in node if isinstance(n, dict))
                elif isinstance(node, dict):
                    nxt.append(node.get(key))
            found = nxt
        flat: list[Any] = []
        for value in found:
            flat.extend(value if isinstance(value, list) else [value])
        return [v for v in flat if v is not None]
    return read


def _strings(values: Iterable[Any] | Any) -> list[str]:
    if isinstance(values, str | bool | int) or values is None:
        values = [values]
    out = []
    for value in values:
        if value is None:
            continue
        out.append(("true" if value else "false") if isinstance(value, bool) else str(value))
    return out


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in item.get("tagSet") or []}


def _tag_value(key: str) -> Reader:
    def read(item: dict[str, Any]) -> list[str]:
        tags = _tags(item)
        return [tags[key]] if key in tags else []
    return read


def _tag_keys(item: dict[str, Any]) -> list[str]:
    return list(_tags(item))


def _tag_values(item: dict[str, Any]) -> list[str]:
    return list(_tags(item).values())


def _match(pattern: str, value: str) -> bool:
    if "*" in pattern or "?" in pattern:
        return fnmatch.fnmatchcase(value, pattern)
    return pattern == value


def apply(items: list[dict[str, Any]], params: Params, filters: Filters) -> list[dict[str, Any]]:
    """The items every `Filter.N` of the request matches."""
    for spec in params.items("Filter"):
        name = spec.required("Name")
        wanted = spec.strings("Value")
        read: Reader
        if name.startswith("tag:"):
            read = _tag_value(name[4:])
        elif name == "tag-key":
            read = _tag_keys
        elif name == "tag-value":
            read = _tag_values
        elif name in filters:
            read = filters[name]
        else:
            raise invalid("Filter.Name", name, "The filter is not supported for this request: "
                          f"use one of {', '.join(sorted(filters)) or 'tag:<key>, tag-key'}.")
        items = [i for i in items
                 if any(_match(w, v) for w in wanted for v in _strings(read(i)))]
    return items


def page(items: list[Any], params: Params, *, low: int = 5,
         high: int = 1000) -> tuple[list[Any], str | None]:
    """One page of `items` and the NextToken of the next (None on the last). The token is the
    next item's offset: items are listed in a stable order (by creation, then id)."""
    size = params.integer("MaxResults", None, low=low, high=high)
    token = params.get("NextToken")
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode())
        except ValueError:
            raise Ec2Error("InvalidNextToken", "The token is not valid.") from None
        if start < 0 or start > len(items):
            raise Ec2Error("InvalidNextToken", "The token is not valid.")
    if size is None:
        return items[start:], None
    end = start + size
    more = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], more
