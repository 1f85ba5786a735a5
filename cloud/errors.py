"""The errors every layer raises, one hierarchy for the whole control plane.

    KumoError                     a refusal we answer on purpose, with a status
    ├── BadRequest          400
    ├── Unauthorized        401
    ├── Forbidden           403
    │   └── OverLimit       403   (quota)
    ├── NotFound            404
    ├── MethodNotAllowed    405
    ├── NotAcceptable       406   (microversion out of range)
    ├── Conflict            409
    ├── RequestTooLarge     413
    ├── UnsupportedMedia    415
    └── ServiceUnavailable  503   (a part of the cloud is away: the request may be tried again)

Domain code raises these with a message a user can read; it never builds a response. The HTTP layer
(cloud/api/error_bodies.py) maps them onto each API family's body, and the dashboard shows the
message. `compute_key` and `neutron_type` are the two details of those bodies that depend on the
error itself rather than on its status (quota's "forbidden" key in Nova, Neutron's error type).
"""

from __future__ import annotations

from http import HTTPStatus


class KumoError(Exception):
    status = 500
    compute_key: str | None = None
    neutron_type: str | None = None

    def __init__(self, message: str = "", *, neutron_type: str | None = None):
        super().__init__(message)
        self.message = message or HTTPStatus(self.status).phrase
        if neutron_type:
            self.neutron_type = neutron_type


class BadRequest(KumoError):
    status = 400


class Unauthorized(KumoError):
    status = 401


class Forbidden(KumoError):
    status = 403


class OverLimit(Forbidden):
    compute_key = "forbidden"

    def __init__(self, message: str = "", *, resources: tuple[str, ...] = ()):
        super().__init__(message)
        # The quota resources it is over (instances, cores, ram, key_pairs…), for callers that
        # name them in their own words (EC2's InstanceLimitExceeded); empty when unsaid.
        self.resources = resources


class NotFound(KumoError):
    status = 404


class MethodNotAllowed(KumoError):
    status = 405


class NotAcceptable(KumoError):
    status = 406
    compute_key = "computeFault"


class Conflict(KumoError):
    status = 409


class RequestTooLarge(KumoError):
    status = 413


class UnsupportedMedia(KumoError):
    status = 415


class ServiceUnavailable(KumoError):
    status = 503
