"""The request bodies of POST /servers, PUT /servers/{id} and the rebuild action, one JSON Schema per
microversion that changed them (Nova's steps), so a field is accepted exactly from the version that
introduced it and refused (400) before.

create   2.1 base · 2.19 description · 2.32 a device tag on networks and block devices · 2.33 the
         block-device tag dropped · 2.37 networks required ("auto", "none" or a list of UUIDs) ·
         2.42 both tags back · 2.52 tags · 2.57 personality gone · 2.63 trusted certificates ·
         2.67 volume_type · 2.74 host, hypervisor_hostname · 2.90 hostname · 2.94 FQDN hostname
update   2.1 · 2.19 description · 2.90 hostname · 2.94 FQDN · 2.104 pinned_availability_zone
rebuild  2.1 · 2.19 description · 2.54 key_name · 2.57 user_data, personality gone · 2.63 trusted
         certificates · 2.90 hostname · 2.94 FQDN
"""

from __future__ import annotations

import copy
from typing import Any

from cloud.validation import name_schema

from ..base import Versioned
from .server_tags import TAGS_SCHEMA

Schema = dict[str, Any]

UUID = {"type": "string", "format": "uuid"}
# Nova's description: up to 255 characters, no control characters (a newline is one).
DESCRIPTION = {"type": ["string", "null"], "maxLength": 255, "pattern": r"^[^\x00-\x1f\x7f]*$"}
HOSTNAME = {"type": "string", "minLength": 2, "maxLength": 63,
            "pattern": "^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$"}
FQDN = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9-._]*$"}
DEVICE_TAG = {"type": "string", "maxLength": 60, "pattern": "^[^,/]*$"}
TRUSTED_CERTS = {"type": ["array", "null"], "minItems": 1, "maxItems": 50, "uniqueItems": True,
                 "items": {"type": "string", "minLength": 1}}
BOOLEAN_VALUES: list[bool | str] = [
    True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
    False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"]
BOOLEAN = {"type": ["boolean", "string"], "enum": BOOLEAN_VALUES}
_IP = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
ACCESS_IPV4 = {"type": "string", "format": "ipv4"}
ACCESS_IPV6 = {"type": "string", "format": "ipv6"}
# Metadata keys and values as Nova takes them: up to 255 characters, keys non-empty; the number
# of items is the project's metadata_items quota (403), not a schema limit.
METADATA = {
    "type": "object",
    "patternProperties": {
        "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255,
                                      "pattern": r"^[^\x00-\x1f]*$"}
    },
    "additionalProperties": False,
}
PERSONALITY = {"type": "array", "items": {
    "type": "object",
    "properties": {"path": {"type": "string"}, "contents": {"type": "string",
                                                            "format": "base64"}},
    "additionalProperties": False,
}}
_COUNT = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1, "minLength": 1}
_USER_DATA = {"type": ["string", "null"], "maxLength": 65535}

_BDM_ITEM: Schema = {
    "type": "object",
    "properties": {
        "source_type": {"enum": ["volume", "image", "snapshot", "blank"]},
        "uuid": {"type": "string", "minLength": 1, "maxLength": 255,
                 "pattern": "^[a-zA-Z0-9._-]*$"},
        "image_id": UUID,
        "destination_type": {"enum": ["local", "volume"]},
        "guest_format": {"type": "string", "maxLength": 255},
        "device_type": {"type": "string", "maxLength": 255},
        "disk_bus": {"type": "string", "maxLength": 255},
        "boot_index": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"},
        "virtual_name": {"type": "string", "maxLength": 255},
        "volume_id": UUID,
        "snapshot_id": UUID,
        "volume_size": {"type": ["integer", "string", "null"], "pattern": "^[0-9]+$",
                        "minimum": 1, "maximum": 2**31 - 1},
        "device_name": {"type": "string", "minLength": 1, "maxLength": 255,
                        "pattern": "^[a-zA-Z0-9._/-]*$"},
        "delete_on_termination": BOOLEAN,
        "no_device": {},
        "connection_info": {"type": "string", "maxLength": 16777215},
    },
    "additionalProperties": False,
}
_NETWORK_ITEM: Schema = {
    "type": "object",
    "properties": {
        "fixed_ip": _IP,
        "port": {"type": ["string", "null"], "format": "uuid"},
        "uuid": {"type": "string"},
    },
    "additionalProperties": False,
}
_SECURITY_GROUPS = {"type": "array", "items": {
    "type": "object", "properties": {"name": name_schema()}, "additionalProperties": False}}

_CREATE_21: Schema = {
    "type": "object",
    "required": ["server"],
    "properties": {
        "server": {
            "type": "object",
            "required": ["name", "flavorRef"],
            "properties": {
                "name": name_schema(),
                "imageRef": {"anyOf": [UUID, {"enum": [""]}]},
                "flavorRef": {"type": ["string", "integer"], "minLength": 1},
                "adminPass": {"type": "string"},
                "metadata": METADATA,
                "networks": {"type": "array", "items": _NETWORK_ITEM},
                "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
                "accessIPv4": ACCESS_IPV4,
                "accessIPv6": ACCESS_IPV6,
                "personality": PERSONALITY,
                "availability_zone": name_schema(),
                "block_device_mapping": {"type": "array", "items": _BDM_ITEM},
                "block_device_mapping_v2": {"type": "array", "items": _BDM_ITEM},
                "config_drive": BOOLEAN,
                "key_name": name_schema(),
                "min_count": _COUNT,
                "max_count": _COUNT,
                "return_reservation_id": BOOLEAN,
                "security_groups": _SECURITY_GROUPS,
                "user_data": _USER_DATA,
            },
            "additionalProperties": False,
        },
        "os:scheduler_hints": {"type": "object"},
        "OS-SCH-HNT:scheduler_hints": {"type": "object"},
    },
    "additionalProperties": False,
}


def _step(base: Schema, change) -> Schema:
    schema = copy.deepcopy(base)
    change(schema["properties"][next(iter(base["required"]))]["properties"], schema)
    return schema


def _server(schema: Schema) -> Schema:
    return schema["properties"]["server"]


_CREATE_219 = _step(_CREATE_21, lambda p, s: p.update(description=DESCRIPTION))
_CREATE_232 = _step(_CREATE_219, lambda p, s: (
    p["networks"]["items"]["properties"].update(tag=DEVICE_TAG),
    p["block_device_mapping_v2"]["items"]["properties"].update(tag=DEVICE_TAG)))
_CREATE_233 = _step(_CREATE_219, lambda p, s: p["networks"]["items"]["properties"].update(
    tag=DEVICE_TAG))


def _networks_required(p: Schema, s: Schema, tagged: bool) -> None:
    item = copy.deepcopy(_NETWORK_ITEM)
    item["properties"]["uuid"] = UUID
    if tagged:
        item["properties"]["tag"] = DEVICE_TAG
    p["networks"] = {"oneOf": [{"type": "array", "items": item}, {"enum": ["none", "auto"]}]}
    _server(s)["required"] = ["name", "flavorRef", "networks"]


def _tags_back(p: Schema, s: Schema) -> None:
    _networks_required(p, s, tagged=True)
    p["block_device_mapping_v2"]["items"]["properties"].update(tag=DEVICE_TAG)


_CREATE_237 = _step(_CREATE_219, lambda p, s: _networks_required(p, s, tagged=False))
_CREATE_242 = _step(_CREATE_237, _tags_back)
_CREATE_252 = _step(_CREATE_242, lambda p, s: p.update(tags=TAGS_SCHEMA))
_CREATE_257 = _step(_CREATE_252, lambda p, s: p.pop("personality"))
_CREATE_263 = _step(_CREATE_257, lambda p, s: p.update(trusted_image_certificates=TRUSTED_CERTS))
_CREATE_267 = _step(_CREATE_263, lambda p, s: p["block_device_mapping_v2"]["items"][
    "properties"].update(volume_type={"type": ["string", "null"], "minLength": 0,
                                      "maxLength": 255}))
_CREATE_274 = _step(_CREATE_267, lambda p, s: p.update(host=FQDN, hypervisor_hostname=FQDN))
_CREATE_290 = _step(_CREATE_274, lambda p, s: p.update(hostname=HOSTNAME))
_CREATE_294 = _step(_CREATE_290, lambda p, s: p.update(hostname=FQDN))

CREATE = Versioned(
    ("2.1", _CREATE_21), ("2.19", _CREATE_219), ("2.32", _CREATE_232), ("2.33", _CREATE_233),
    ("2.37", _CREATE_237), ("2.42", _CREATE_242), ("2.52", _CREATE_252), ("2.57", _CREATE_257),
    ("2.63", _CREATE_263), ("2.67", _CREATE_267), ("2.74", _CREATE_274), ("2.90", _CREATE_290),
    ("2.94", _CREATE_294),
)

_UPDATE_21: Schema = {
    "type": "object",
    "required": ["server"],
    "properties": {
        "server": {
            "type": "object",
            "properties": {
                "name": name_schema(),
                "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
                # Kumo also takes "" and null here, to clear an address.
                "accessIPv4": {"anyOf": [ACCESS_IPV4, {"enum": ["", None]}]},
                "accessIPv6": {"anyOf": [ACCESS_IPV6, {"enum": ["", None]}]},
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
_UPDATE_219 = _step(_UPDATE_21, lambda p, s: p.update(description=DESCRIPTION))
_UPDATE_290 = _step(_UPDATE_219, lambda p, s: p.update(hostname=HOSTNAME))
_UPDATE_294 = _step(_UPDATE_290, lambda p, s: p.update(hostname=FQDN))
_UPDATE_2104 = _step(_UPDATE_294, lambda p, s: p.update(pinned_availability_zone={
    "oneOf": [{"type": "string", "minLength": 1, "maxLength": 255}, {"type": "null"}]}))

UPDATE = Versioned(("2.1", _UPDATE_21), ("2.19", _UPDATE_219), ("2.90", _UPDATE_290),
                   ("2.94", _UPDATE_294), ("2.104", _UPDATE_2104))

_REBUILD_21: Schema = {
    "type": "object",
    "required": ["imageRef"],
    "properties": {
        "name": name_schema(),
        "imageRef": {"type": "string", "minLength": 1},
        "adminPass": {"type": "string"},
        "metadata": METADATA,
        "preserve_ephemeral": BOOLEAN,
        "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
        "accessIPv4": ACCESS_IPV4,
        "accessIPv6": ACCESS_IPV6,
        "personality": PERSONALITY,
    },
    "additionalProperties": False,
}


def _rebuild_step(base: Schema, **fields: Any) -> Schema:
    schema = copy.deepcopy(base)
    for name, value in fields.items():
        if value is None:
            schema["properties"].pop(name)
        else:
            schema["properties"][name] = value
    return schema


_REBUILD_219 = _rebuild_step(_REBUILD_21, description=DESCRIPTION)
_REBUILD_254 = _rebuild_step(_REBUILD_219, key_name={
    "oneOf": [{"type": "string", "minLength": 1, "maxLength": 255}, {"type": "null"}]})
_REBUILD_257 = _rebuild_step(_REBUILD_254, personality=None, user_data=_USER_DATA)
_REBUILD_263 = _rebuild_step(_REBUILD_257, trusted_image_certificates=TRUSTED_CERTS)
_REBUILD_290 = _rebuild_step(_REBUILD_263, hostname=HOSTNAME)
_REBUILD_294 = _rebuild_step(_REBUILD_290, hostname=FQDN)

REBUILD = Versioned(("2.1", _REBUILD_21), ("2.19", _REBUILD_219), ("2.54", _REBUILD_254),
                    ("2.57", _REBUILD_257), ("2.63", _REBUILD_263), ("2.90", _REBUILD_290),
                    ("2.94", _REBUILD_294))
