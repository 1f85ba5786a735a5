"""Key pairs: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair, over the same key
pairs as Nova's os-keypairs (a user's own, counted in the project's key_pairs quota).

A key pair's EC2 id is `key-` and its row number in 17 hex digits: key pairs are named, not
uuid'd, in Nova's API, and the number never changes."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cloud import errors
from cloud.compute import keypairs
from cloud.compute.models import KeyPair

from . import listing
from .errors import Ec2Error, invalid, translate
from .registry import Call, action

FILTERS: listing.Filters = {
    "key-name": listing.path("keyName"),
    "key-pair-id": listing.path("keyPairId"),
    "fingerprint": listing.path("keyFingerprint"),
    "key-type": listing.path("keyType"),
}


def key_pair_id(keypair: KeyPair) -> str:
    return f"key-{keypair.pk:017x}"


def describe(keypair: KeyPair, with_public_key: bool = False) -> dict[str, Any]:
    return {
        "keyPairId": key_pair_id(keypair), "keyName": keypair.name,
        "keyFingerprint": keypair.fingerprint, "keyType": "rsa" if keypair.type == "ssh" else
        keypair.type, "tagSet": [], "createTime": keypair.created_at,
        "publicKey": keypair.public_key if with_public_key else None,
    }


def _create(call: Call, name: str, public_key: str | None) -> tuple[KeyPair, str | None]:
    try:
        return keypairs.create_keypair(call.ctx, call.ctx.user_id, name, public_key=public_key)
    except errors.Conflict:
        raise Ec2Error("InvalidKeyPair.Duplicate",
                       f"The keypair '{name}' already exists.") from None
    except errors.BadRequest as exc:
        raise Ec2Error("InvalidKeyPair.Format" if public_key else "InvalidParameterValue",
                       exc.message) from None


@action("CreateKeyPair", "compute:keypairs:create")
def create_key_pair(call: Call) -> dict[str, Any]:
    name = call.params.required("KeyName")
    key_type = call.params.get("KeyType", "rsa")
    if key_type != "rsa":
        raise invalid("KeyType", key_type, "Kumo generates rsa keys; import an ed25519 key "
                      "with ImportKeyPair.")
    if call.params.get("KeyFormat", "pem") != "pem":
        raise invalid("KeyFormat", call.params.get("KeyFormat"), "Kumo gives keys as pem.")
    keypair, private_key = _create(call, name, None)
    return {"keyPairId": key_pair_id(keypair), "keyName": keypair.name,
            "keyFingerprint": keypair.fingerprint, "keyMaterial": private_key, "tagSet": []}


@action("ImportKeyPair", "compute:keypairs:create")
def import_key_pair(call: Call) -> dict[str, Any]:
    name = call.params.required("KeyName")
    material = call.params.required("PublicKeyMaterial")
    try:  # the clients send the key base64-encoded (a blob in EC2's model)
        public_key = base64.b64decode(material, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        public_key = material
    keypair, _ = _create(call, name, public_key)
    return {"keyPairId": key_pair_id(keypair), "keyName": keypair.name,
            "keyFingerprint": keypair.fingerprint, "tagSet": []}


@action("DescribeKeyPairs", "compute:keypairs:index")
def describe_key_pairs(call: Call) -> dict[str, Any]:
    owned = {k.name: k for k in keypairs.list_keypairs(call.ctx.user_id)}
    names = call.params.strings("KeyName")
    ids = call.params.strings("KeyPairId")
    for name in names:
        if name not in owned:
            raise Ec2Error("InvalidKeyPair.NotFound", f"The key pair '{name}' does not exist")
    by_id = {key_pair_id(k): k for k in owned.values()}
    for key_id in ids:
        if key_id not in by_id:
            raise Ec2Error("InvalidKeyPair.NotFound", f"The key pair ID '{key_id}' does not "
                           "exist")
    chosen = [k for k in owned.values()
              if (not names or k.name in names) and (not ids or key_pair_id(k) in ids)]
    with_key = bool(call.params.flag("IncludePublicKey", False))
    items = [describe(k, with_key) for k in sorted(chosen, key=lambda k: k.pk)]
    return {"keySet": listing.apply(items, call.params, FILTERS)}


@action("DeleteKeyPair", "compute:keypairs:delete")
def delete_key_pair(call: Call) -> dict[str, Any]:
    name = call.params.get("KeyName")
    key_id = call.params.get("KeyPairId")
    if not name and not key_id:
        raise Ec2Error("MissingParameter", "The request must contain the parameter KeyName or "
                       "KeyPairId.")
    owned = keypairs.list_keypairs(call.ctx.user_id)
    found = [k for k in owned if (not name or k.name == name) and
             (not key_id or key_pair_id(k) == key_id)]
    # As EC2 answers: deleting a key pair that is not there succeeds (it is gone either way).
    for keypair in found:
        try:
            keypairs.delete_keypair(call.ctx.user_id, keypair.name)
        except errors.NotFound:
            pass
        except errors.KumoError as exc:
            raise translate(exc) from exc
    return {"return": True, "keyPairId": key_pair_id(found[0]) if found else None}
