"""Every EC2 action Kumo serves: importing each actions_* module registers its actions, so this
list is where a new module is switched on."""

from . import (  # noqa: F401
    actions_account,
    actions_addresses,
    actions_images,
    actions_instance_attributes,
    actions_instances,
    actions_keypairs,
    actions_security_groups,
    actions_tags,
    actions_volumes,
    actions_vpcs,
)
from .registry import ACTIONS

__all__ = ["ACTIONS"]
