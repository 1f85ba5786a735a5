"""The base every message derives from: a dataclass that travels as a JSON-safe dict."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self

from compute_agent.messages.names import CONTRACT_VERSION

__all__ = ["Message"]

# The messages nested in others, as (class name, field name) -> class; each module of the
# contract adds its own.
_NESTED: dict[tuple[str, str], type[Message]] = {}


def _check_version(name: str, data: dict[str, Any]) -> None:
    version = str(data.get("contract_version", CONTRACT_VERSION))
    if version.split(".")[0] != CONTRACT_VERSION.split(".")[0]:
        raise ValueError(f"{name}: contract {version} is not {CONTRACT_VERSION}")


@dataclass
class Message:
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["contract_version"] = CONTRACT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        _check_version(cls.__name__, data)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            nested = _NESTED.get((cls.__name__, f.name))
            if nested is not None and value is not None:
                value = (
                    [nested.from_dict(v) for v in value]
                    if isinstance(value, list)
                    else nested.from_dict(value)
                )
            kwargs[f.name] = value
        return cls(**kwargs)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _flat(obj: Any) -> dict[str, Any]:
    """A dataclass's fields, one level deep (its lists and nested objects as they are)."""
    return {name: getattr(obj, name) for name in _names(type(obj))}
