"""EC2's errors: a code clients branch on (`InvalidInstanceID.NotFound`), a message, a status.

Service functions refuse with Kumo's errors (cloud.errors); `translate` gives each EC2's nearest
code, so an action only names the codes that are specific to it (which resource was not found).
"""

from __future__ import annotations

from cloud import errors


class Ec2Error(Exception):
    """A refusal answered in EC2's error shape."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def auth_failure(message: str = "AWS was not able to validate the provided access "
                 "credentials.") -> Ec2Error:
    return Ec2Error("AuthFailure", message, 401)


def missing(name: str) -> Ec2Error:
    return Ec2Error("MissingParameter",
                    f"The request must contain the parameter {name}.")


def invalid(name: str, value: object, why: str = "") -> Ec2Error:
    text = f"Value ({value}) for parameter {name} is invalid."
    return Ec2Error("InvalidParameterValue", f"{text} {why}".strip())


def not_found(code: str, what: str, value: object) -> Ec2Error:
    """`InvalidInstanceID.NotFound`: "The instance ID 'i-…' does not exist"."""
    return Ec2Error(code, f"The {what} '{value}' does not exist")


def unauthorized() -> Ec2Error:
    return Ec2Error("UnauthorizedOperation",
                    "You are not authorized to perform this operation.", 403)


_INSTANCE_QUOTAS = {"instances", "cores", "ram"}


def translate(exc: errors.KumoError, not_found_code: str = "InvalidParameterValue") -> Ec2Error:
    """Kumo's refusal as EC2's: a missing resource under the code the action names; the rest by
    kind. The message stays Kumo's: it says what to change."""
    if isinstance(exc, errors.OverLimit):
        # Quotas: EC2 names instances' own (their number, vCPUs and memory: EC2 counts vCPUs
        # per instance family under the same code); every other resource's is a
        # ResourceLimitExceeded.
        code = ("InstanceLimitExceeded" if set(exc.resources) & _INSTANCE_QUOTAS
                else "ResourceLimitExceeded")
        return Ec2Error(code, exc.message)
    if isinstance(exc, errors.NotFound):
        return Ec2Error(not_found_code, exc.message)
    if isinstance(exc, errors.Forbidden):
        return Ec2Error("UnauthorizedOperation", exc.message, 403)
    if isinstance(exc, errors.Conflict):
        return Ec2Error("IncorrectState", exc.message)
    if isinstance(exc, errors.Unauthorized):
        return auth_failure(exc.message)
    if isinstance(exc, errors.ServiceUnavailable):
        return Ec2Error("Unavailable", exc.message, 503)
    if exc.status < 500:
        return Ec2Error("InvalidParameterValue", exc.message)
    return Ec2Error("InternalError", "An internal error has occurred.", 500)
