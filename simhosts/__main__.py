"""Command line of simhosts (see the package docstring)."""

from __future__ import annotations

import argparse
import os
import sys

from . import failures, hosts, storage, supervise


def main(argv: list[str] | None = None) -> int:
    # --tag is taken before or after the verb (`up 3 --tag X`, as the docstring writes it).
    tag = argparse.ArgumentParser(add_help=False)
    tag.add_argument("--tag", default=argparse.SUPPRESS,
                     help="which set of hosts (one per stack); default: run")
    parser = argparse.ArgumentParser(prog="python -m simhosts", parents=[tag])
    verbs = parser.add_subparsers(dest="verb", required=True)
    up = verbs.add_parser("up", parents=[tag],
                          help="start N hosts (after removing what the tag left)")
    up.add_argument("count", type=int)
    up.add_argument("--prefix", default="compute")
    up.add_argument("--lxc", type=int, default=0, metavar="N",
                    help="also N container hosts lxc-1..N (libvirt LXC)")
    up.add_argument("--storage", type=int, default=0, metavar="N",
                    help="also N storage hosts storage-1..N (volume hosts serving NBD)")
    verbs.add_parser("down", parents=[tag],
                     help="remove the tag's hosts, guests, namespaces and directories")
    verbs.add_parser("status", parents=[tag], help="the tag's hosts")
    agent = verbs.add_parser("agent", parents=[tag],
                             help="exec the compute agent of a host (the volume agent of a "
                                  "storage host), in its namespace")
    agent.add_argument("--supervise", action="store_true",
                       help="run it as a child, started again when it dies (not while the host "
                            "is failed); SIGTERM/SIGINT reach it and stop both")
    agent.add_argument("host")
    agent.add_argument("args", nargs=argparse.REMAINDER,
                       help="more compute agent arguments, after --")
    for verb, text in (
        ("fail", "kill every process of the host, cut its links, mark it failed"),
        ("fence", ("the same, for a fencing driver: exit 0 once nothing of the host runs and its "
                   "links are down (also when already failed)")),
        ("recover", ("links up, libvirtd started, marker removed (its guests stay shut off; the "
                     "agent's supervisor starts the agent)")),
    ):
        verbs.add_parser(verb, parents=[tag], help=text).add_argument("host")
    args = parser.parse_args(argv)
    args.tag = getattr(args, "tag", None) or os.environ.get("KUMO_SIMHOSTS_TAG", "run")

    if args.verb == "up":
        for host in hosts.up(args.tag, args.count, args.prefix, lxc=args.lxc):
            print(f"{host.name} {host.ip} {host.uri}")
        for volume_host in storage.up(args.tag, args.storage):
            print(f"{volume_host.name} {volume_host.ip} nbd://{volume_host.ip}:{storage.NBD_PORT}")
        return 0
    if args.verb == "down":
        hosts.down(args.tag)
        return 0
    if args.verb == "status":
        for host in hosts.existing(args.tag):
            state = "up" if host.libvirtd_pid() else "down"
            if failures.is_failed(host):
                state = "failed"
            print(f"{host.name} {host.ip} {state} {host.uri}")
        for volume_host in storage.storage_hosts(args.tag):
            state = "up" if volume_host.holder_pid() else "down"
            print(f"{volume_host.name} {volume_host.ip} {state} "
                  f"nbd://{volume_host.ip}:{storage.NBD_PORT}")
        return 0
    if args.verb in ("fail", "fence", "recover"):
        action = {"fail": failures.fail, "fence": failures.fence,
                  "recover": failures.recover}[args.verb]
        try:
            host = action(args.tag, args.host)
        except hosts.HostError as exc:
            print(f"simhosts {args.verb}: {exc}", file=sys.stderr)
            return 1
        print(f"{host.name}: {'recovered' if args.verb == 'recover' else 'failed'}")
        return 0
    # `agent HOST --supervise` as well as `agent --supervise HOST`: after the host, argparse
    # leaves the option among the agent's arguments.
    cut = args.args.index("--") if "--" in args.args else len(args.args)
    before, after = args.args[:cut], args.args[cut:]
    if "--supervise" in before:
        args.supervise = True
        before.remove("--supervise")
    extra = [a for a in before + after if a != "--"]
    storage_host = storage.find(args.tag, args.host)
    if storage_host is not None:  # a storage host's agent is the volume agent; it never fails
        if args.supervise:
            return supervise.supervise(
                lambda: storage.agent_argv(storage_host, sys.executable, extra), lambda: False)
        argv_ = storage.agent_argv(storage_host, sys.executable, extra)
        os.execvp(argv_[0], argv_)
    found = {h.name: h for h in hosts.existing(args.tag)}
    if args.host not in found:
        parser.error(f"no host {args.host!r} in tag {args.tag!r}: {sorted(found)}")
    host = found[args.host]
    if args.supervise:
        return supervise.supervise(lambda: hosts.agent_argv(host, sys.executable, extra),
                                   lambda: failures.is_failed(host))
    argv_ = hosts.agent_argv(host, sys.executable, extra)
    os.execvp(argv_[0], argv_)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
