"""The Query protocol's parameters as a tree.

boto3 and the AWS CLI flatten a request into form fields: lists as `InstanceId.1`, `InstanceId.2`,
structures as `Placement.AvailabilityZone`, lists of structures as `Filter.1.Name` and
`Filter.1.Value.1`. `Params` reads them back by those names, and refuses a value of the wrong type
with EC2's `InvalidParameterValue` and a missing one with `MissingParameter`.
"""

from __future__ import annotations

from typing import Any

from .errors import invalid, missing

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def _tree(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if not isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = value
    return root


class Params:
    """One level of the tree: the request itself, or one structure inside it."""

    def __init__(self, node: dict[str, Any], prefix: str = "") -> None:
        self._node = node
        self._prefix = prefix

    @classmethod
    def parse(cls, pairs: list[tuple[str, str]]) -> Params:
        return cls(_tree(pairs))

    def _name(self, name: str) -> str:
        return f"{self._prefix}{name}"

    def has(self, name: str) -> bool:
        return name in self._node

    def names(self) -> list[str]:
        return list(self._node)

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._node.get(name)
        if value is None:
            return default
        if isinstance(value, dict):
            raise invalid(self._name(name), "…", "It must be a single value.")
        return value

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None or value == "":
            raise missing(self._name(name))
        return value

    def integer(self, name: str, default: int | None = None, *, low: int | None = None,
            high: int | None = None) -> int | None:
        text = self.get(name)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            raise invalid(self._name(name), text, "It must be an integer.") from None
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise invalid(self._name(name), text, f"It must be {bounds}.")
        return value

    def flag(self, name: str, default: bool | None = None) -> bool | None:
        text = self.get(name)
        if text is None or text == "":
            return default
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise invalid(self._name(name), text, "It must be true or false.")

    def _members(self, name: str) -> list[tuple[int, Any]]:
        node = self._node.get(name)
        if node is None:
            return []
        if not isinstance(node, dict) or not all(k.isdigit() for k in node):
            raise invalid(self._name(name), "…", f"Send it as {self._name(name)}.1, .2, ….")
        return sorted((int(k), v) for k, v in node.items())

    def strings(self, name: str) -> list[str]:
        """`Name.1`, `Name.2`, … in order of their numbers."""
        out = []
        for index, value in self._members(name):
            if isinstance(value, dict):
                raise invalid(f"{self._name(name)}.{index}", "…", "It must be a single value.")
            out.append(value)
        return out

    def items(self, name: str) -> list[Params]:
        """`Name.1.Member`, `Name.2.Member`, …: a list of structures."""
        out = []
        for index, value in self._members(name):
            if not isinstance(value, dict):
                raise invalid(f"{self._name(name)}.{index}", value, "It must be a structure.")
            out.append(Params(value, f"{self._name(name)}.{index}."))
        return out

    def struct(self, name: str) -> Params | None:
        """`Name.Member`: one structure, or None when absent."""
        value = self._node.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise invalid(self._name(name), value, "It must be a structure.")
        return Params(value, f"{self._name(name)}.")
