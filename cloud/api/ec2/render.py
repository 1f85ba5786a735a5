"""EC2's XML: `<ActionResponse xmlns=…><requestId>…</requestId>…</ActionResponse>` for an answer,
`<Response><Errors><Error><Code>…` for a refusal, built with ElementTree.

An answer is a dict of element names (EC2's `locationName`s, as botocore's service model reads
them): a dict becomes nested elements, a list one `<item>` per member, a bool `true`/`false`, a
datetime ISO 8601 in UTC, and None is left out.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any

NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"
API_VERSION = "2016-11-15"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"
    return str(value)


def _fill(parent: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            if child is None:
                continue
            _fill(ET.SubElement(parent, key), child)
    elif isinstance(value, list | tuple):
        for member in value:
            _fill(ET.SubElement(parent, "item"), member)
    else:
        parent.text = _text(value)


def answer(action: str, request_id: str, body: dict[str, Any]) -> bytes:
    root = ET.Element(f"{action}Response", xmlns=NAMESPACE)
    ET.SubElement(root, "requestId").text = request_id
    _fill(root, body)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def error(code: str, message: str, request_id: str) -> bytes:
    root = ET.Element("Response")
    item = ET.SubElement(ET.SubElement(root, "Errors"), "Error")
    ET.SubElement(item, "Code").text = code
    ET.SubElement(item, "Message").text = message
    ET.SubElement(root, "RequestID").text = request_id
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
