"""The policy table: which role may do which API action. One rule per action, checked in views.

Rules: "public" (no token), "authenticated" (any valid token), "reader" (reader, member or admin on
the project), "member" (member or admin), "admin".
"""

from __future__ import annotations

from .context import RequestContext

RULES: dict[str, str] = {
    "compute:servers:index": "reader",
    "compute:servers:show": "reader",
    "compute:servers:create": "member",
    "compute:servers:delete": "member",
    "compute:servers:show:host_attributes": "admin",
    "compute:servers:all_tenants": "admin",
    "compute:servers:update": "member",
    "compute:servers:lock": "member",
    "compute:servers:unlock": "member",
    "compute:servers:unlock_override": "admin",
    "compute:servers:reset_state": "admin",
    "compute:server_metadata:index": "reader",
    "compute:server_metadata:show": "reader",
    "compute:server_metadata:create": "member",
    "compute:server_metadata:update": "member",
    "compute:server_metadata:update_all": "member",
    "compute:server_metadata:delete": "member",
    "compute:ips:index": "reader",
    "compute:ips:show": "reader",
    "compute:instance_actions:index": "reader",
    "compute:instance_actions:show": "reader",
    "compute:instance_actions:deleted": "reader",
    "compute:instance_actions:events": "admin",
    "compute:instance_actions:events:traceback": "admin",
    "compute:flavors:index": "authenticated",
    "compute:flavors:show": "authenticated",
    "compute:flavors:create": "admin",
    "compute:flavors:delete": "admin",
    "compute:hypervisors": "admin",
    # Key pairs belong to users, not projects: anyone may manage their own (Nova's owner rule).
    "compute:keypairs:index": "authenticated",
    "compute:keypairs:show": "authenticated",
    "compute:keypairs:create": "authenticated",
    "compute:keypairs:delete": "authenticated",
    "compute:keypairs:other_user": "admin",
    "compute:quotas:show": "reader",
    "compute:quotas:detail": "reader",
    "compute:quotas:other_project": "admin",
    "compute:quotas:defaults": "authenticated",
    "compute:quotas:update": "admin",
    "compute:quotas:delete": "admin",
    "compute:limits": "authenticated",
    "compute:limits:other_project": "admin",
    "compute:services": "admin",
    "compute:server_groups:index": "reader",
    "compute:server_groups:index:all_projects": "admin",
    "compute:server_groups:show": "reader",
    "compute:server_groups:create": "member",
    "compute:server_groups:delete": "member",
    "compute:availability_zones:list": "authenticated",
    "compute:availability_zones:detail": "admin",
    "compute:aggregates:index": "admin",
    "compute:aggregates:show": "admin",
    "compute:aggregates:create": "admin",
    "compute:aggregates:update": "admin",
    "compute:aggregates:delete": "admin",
    "compute:aggregates:add_host": "admin",
    "compute:aggregates:remove_host": "admin",
    "compute:aggregates:set_metadata": "admin",
    "image:get": "reader",
    "image:create": "member",
    "image:upload": "member",
    "image:download": "reader",
    "image:delete": "member",
    "image:modify": "member",
    "image:publicize": "admin",
    "network:get": "reader",
    "identity:auth:projects": "authenticated",
    "identity:domains:list": "authenticated",
    "identity:domains:show": "authenticated",
    "identity:projects:list": "admin",
    "identity:projects:show": "admin",
    "identity:projects:create": "admin",
    "identity:projects:update": "admin",
    "identity:projects:delete": "admin",
    "identity:users:list": "admin",
    "identity:users:show": "admin",
    "identity:users:show:own": "authenticated",
    "identity:users:projects": "admin",
    "identity:users:projects:own": "authenticated",
    "identity:users:create": "admin",
    "identity:users:update": "admin",
    "identity:users:delete": "admin",
    "identity:roles:list": "admin",
    "identity:roles:show": "admin",
    "identity:roles:create": "admin",
    "identity:roles:update": "admin",
    "identity:roles:delete": "admin",
    "identity:project_user_roles:list": "admin",
    "identity:project_user_roles:check": "admin",
    "identity:project_user_roles:grant": "admin",
    "identity:project_user_roles:revoke": "admin",
    "identity:role_assignments:list": "admin",
    # guest actions
    "compute:servers:start": "member",
    "compute:servers:stop": "member",
    "compute:servers:pause": "member",
    "compute:servers:unpause": "member",
    "compute:servers:suspend": "member",
    "compute:servers:resume": "member",
    "compute:servers:reboot": "member",
    "compute:servers:rebuild": "member",
    "compute:servers:resize": "member",
    "compute:servers:confirm_resize": "member",
    "compute:servers:revert_resize": "member",
    "compute:servers:create_image": "member",
    "compute:servers:console_output": "member",
    # moving a server to another host, and the migrations' records
    "compute:servers:migrate": "admin",
    "compute:servers:migrate_live": "admin",
    "compute:migrations:index": "admin",
    "compute:server_migrations:index": "admin",
    "compute:server_migrations:show": "admin",
    "compute:server_migrations:delete": "admin",
    "compute:server_migrations:force_complete": "admin",
    # host drains (Kumo's extension): disable a host and move every guest away
    "compute:host_drains:create": "admin",
    "compute:host_drains:index": "admin",
    "compute:host_drains:show": "admin",
    "compute:host_drains:delete": "admin",
    # a console URL (remote-consoles, and the legacy os-getVNCConsole action)
    "compute:servers:remote_consoles": "member",
    # flavor extra specs: anyone may read them, as Nova lets any user see a flavor's
    "compute:flavor_extra_specs:index": "authenticated",
    "compute:flavor_extra_specs:show": "authenticated",
    "compute:flavor_extra_specs:create": "admin",
    "compute:flavor_extra_specs:update": "admin",
    "compute:flavor_extra_specs:delete": "admin",
    # image sharing (members answer for themselves; the owner manages), import and its tasks
    "image:get_members": "reader",
    "image:get_member": "reader",
    "image:add_member": "member",
    "image:modify_member": "member",
    "image:delete_member": "member",
    "image:import": "member",
    "image:import_info": "authenticated",
    "image:tasks": "reader",
    "image:tasks:admin": "admin",
    # compute API (issue 12): server tags (2.26)
    "compute:server_tags:index": "reader",
    "compute:server_tags:show": "reader",
    "compute:server_tags:update": "member",
    "compute:server_tags:update_all": "member",
    "compute:server_tags:delete": "member",
    "compute:server_tags:delete_all": "member",
    # where a server is built: "zone:host:node" (forced) and 2.74's host/hypervisor_hostname
    "compute:servers:create:forced_host": "admin",
    "compute:servers:create:requested_destination": "admin",
    # a server's security groups (recorded; the network enforces them)
    "compute:servers:add_security_group": "member",
    "compute:servers:remove_security_group": "member",
    "compute:server_security_groups:list": "reader",
    # the server's ports (os-interface)
    "compute:server_interfaces:list": "reader",
    "compute:server_interfaces:show": "reader",
    "compute:server_interfaces:create": "member",
    "compute:server_interfaces:delete": "member",
    # rescue, shelve, backups, crash dumps (Nova's defaults: offloading is an operator's act,
    # and so is choosing the host an offloaded server comes back on)
    "compute:servers:rescue": "member",
    "compute:servers:unrescue": "member",
    "compute:servers:shelve": "member",
    "compute:servers:shelve_offload": "admin",
    "compute:servers:unshelve": "member",
    "compute:servers:unshelve:to_host": "admin",
    "compute:servers:create_backup": "member",
    "compute:servers:trigger_crash_dump": "member",
    # private flavors and who may use them; a flavor's description (2.55)
    "compute:flavor_access:index": "admin",
    "compute:flavor_access:add": "admin",
    "compute:flavor_access:remove": "admin",
    "compute:flavors:update": "admin",
    # usage; external events (sent by the network and volume services: admin, Nova's default)
    "compute:usage:list": "admin",
    "compute:usage:show": "reader",
    "compute:usage:other_project": "admin",
    "compute:server_external_events:create": "admin",
    # a server's NUMA topology (2.78), diagnostics and password
    "compute:server_topology:index": "reader",
    "compute:server_diagnostics": "admin",
    "compute:server_password:show": "reader",
    "compute:server_password:clear": "member",
    "compute:instance_actions:events:details": "reader",
    # adding compute hosts (Kumo's extension, cloud/enrollment): join tokens; the join
    # itself is authenticated by its token, not by Keystone
    "compute:host_tokens:create": "admin",
}

_RANK = {"reader": 1, "member": 2, "admin": 3}


def allowed(context: RequestContext | None, action: str) -> bool:
    rule = RULES[action]
    if rule == "public":
        return True
    if context is None:
        return False
    if rule == "authenticated":
        return True
    have = max((_RANK.get(role, 0) for role in context.roles), default=0)
    return have >= _RANK[rule]
