"""Simulated compute hosts on one machine: each a network namespace plus a private mount namespace
running an unmodified libvirtd with its own directories and address.

    python -m simhosts up 3 [--tag run]      hosts compute-1..3, joined by a bridge
    python -m simhosts up 3 --storage 1      and a storage host storage-1 on the same bridge,
                                             whose volume agent serves NBD there (storage.py)
    python -m simhosts down [--tag run]      every daemon, guest, namespace and directory gone
    python -m simhosts [--tag run] agent [--supervise] compute-2 [-- AGENT ARGS]
                                             the compute agent of that host, in its mount namespace;
                                             --supervise: started again when it dies (supervise.py);
                                             for storage-1, its volume agent
    python -m simhosts status [--tag run]
    python -m simhosts [--tag run] fail compute-2     the host dies: every process killed, links cut
    python -m simhosts [--tag run] fence compute-2    the same; exit 0 = nothing of it runs or
                                                      reaches anything (also when already failed)
    python -m simhosts [--tag run] recover compute-2  links up, libvirtd started, guests shut off

How a host is made (the measured recipe in the shared multihost notes):

- A fabric namespace `kumo-<tag>-fab` holds one bridge; each host namespace `kumo-<tag>-<host>` has
  a veth `eth0` on it with its own address (10.77.0.11, .12, …). Nothing is added to the machine's
  own network namespace: hosts reach each other on the fabric and nothing else.
- In the host's private mount namespace its own directories are bind-mounted over libvirt's fixed
  paths (/etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt) and
  over /var/lib/kumo/instances, so every host keeps instances under the same path (migration XML
  needs no rewriting) but in its own directory. The configuration is written from scratch: copying
  the machine's /etc/libvirt would leak the real daemon's domains into the fakes.
- libvirtd listens on TCP at the host's fabric address only (peer-to-peer migration between
  hosts), with its own host_uuid (libvirt refuses to migrate between hosts with one uuid) and
  migration_host (the hosts share a hostname).
- The agent runs in the host's mount namespace but the machine's network namespace: it reaches the
  broker and the API on 127.0.0.1 and sees the same disk paths as its libvirtd. Guests' VNC
  listens on a unix socket under the host's directory, which the console relay in the machine's
  namespace can open (a TCP port inside the host namespace it could not reach).

A failed host (failures.py) is a machine without power: its directory (libvirt's definitions,
the disks) stays, and a marker file `failed` in it keeps the agent's supervisor from starting the
agent until `recover` removes it. `make host-fail HOST=…` / `make host-recover HOST=…` do this to
the hosts of `make run HOSTS=N`, whose Procfile runs each agent with --supervise.

Everything a tag made is found again from its directory and the namespace names, so `down` (and
`up`, which starts with `down`) cleans up after a crash too. Root with CAP_NET_ADMIN and
CAP_SYS_ADMIN is required.
"""

from .failures import fail, fence, is_failed, recover
from .hosts import HostError, SimHost, agent_argv, down, existing, start_libvirtd, stop_libvirtd, up

__all__ = ["HostError", "SimHost", "agent_argv", "down", "existing", "fail", "fence", "is_failed",
           "recover", "start_libvirtd", "stop_libvirtd", "up"]
