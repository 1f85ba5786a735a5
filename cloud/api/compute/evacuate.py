"""The evacuate server action's body by microversion (Nova's schemas): onSharedStorage required
until 2.13; from 2.14 gone (and no adminPass in the answer); force 2.29-2.67. What is checked and
answered is cloud/compute/evacuation.py's, and cloud/scheduler/evacuations.py carries it out."""

from __future__ import annotations

import copy
from typing import Any

from rest_framework.response import Response

from cloud import errors
from cloud.compute import operations
from cloud.compute.models import Instance
from cloud.validation import validate

from ..base import ComputeView, Versioned
from .server_schemas import BOOLEAN, FQDN

RULE = "compute:servers:evacuate"

_EVACUATE_21: dict[str, Any] = {
    "type": "object",
    "required": ["onSharedStorage"],
    "properties": {"host": FQDN, "onSharedStorage": BOOLEAN, "adminPass": {"type": "string"}},
    "additionalProperties": False,
}
_EVACUATE_214 = copy.deepcopy(_EVACUATE_21)
del _EVACUATE_214["properties"]["onSharedStorage"]
del _EVACUATE_214["required"]
_EVACUATE_229 = copy.deepcopy(_EVACUATE_214)
_EVACUATE_229["properties"]["force"] = BOOLEAN

EVACUATE = Versioned(("2.1", _EVACUATE_21), ("2.14", _EVACUATE_214), ("2.29", _EVACUATE_229),
                     ("2.68", _EVACUATE_214))


def evacuate(view: ComputeView, instance: Instance, args: Any) -> Response:
    """200 and no body: Nova with enable_instance_password off (Kumo puts no password into a
    guest) answers so in every version. onSharedStorage is read and ignored: there is no shared
    storage, so the server is always rebuilt from its image. From 2.95 the server is left stopped
    on its new host, as Nova does."""
    validate(EVACUATE.at(view.version), args)
    host = args.get("host")
    if str(args.get("force")).lower() in ("true", "1", "on", "yes") and not host:
        raise errors.BadRequest("Can't force to a non-provided destination")
    operations.perform(view.ctx, instance, "evacuate", host=host,
                       stop=view.version.at_least("2.95"))
    return Response(status=200)
