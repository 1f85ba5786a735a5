"""Command line of simhosts (see the package docstring)."""

from __future__ import annotations

import argparse
import os
import sys

from . import hosts


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
    verbs.add_parser("down", parents=[tag],
                     help="remove the tag's hosts, guests, namespaces and directories")
    verbs.add_parser("status", parents=[tag], help="the tag's hosts")
    agent = verbs.add_parser("agent", parents=[tag],
                             help="exec the compute agent of a host, in its namespace")
    agent.add_argument("host")
    agent.add_argument("args", nargs=argparse.REMAINDER,
                       help="more compute agent arguments, after --")
    args = parser.parse_args(argv)
    args.tag = getattr(args, "tag", None) or os.environ.get("KUMO_SIMHOSTS_TAG", "run")

    if args.verb == "up":
        for host in hosts.up(args.tag, args.count, args.prefix):
            print(f"{host.name} {host.ip} {host.uri}")
        return 0
    if args.verb == "down":
        hosts.down(args.tag)
        return 0
    if args.verb == "status":
        for host in hosts.existing(args.tag):
            state = "up" if host.libvirtd_pid() else "down"
            print(f"{host.name} {host.ip} {state} {host.uri}")
        return 0
    found = {h.name: h for h in hosts.existing(args.tag)}
    if args.host not in found:
        parser.error(f"no host {args.host!r} in tag {args.tag!r}: {sorted(found)}")
    extra = [a for a in args.args if a != "--"]
    argv_ = hosts.agent_argv(found[args.host], sys.executable, extra)
    os.execvp(argv_[0], argv_)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
