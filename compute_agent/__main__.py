"""`python -m compute_agent`: run this host's compute agent (see compute_agent.worker), or
`python -m compute_agent join URL TOKEN` to make this machine a host first (compute_agent.join)."""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["join"]:
        from compute_agent.join import main as join_main

        raise SystemExit(join_main(sys.argv[2:]))
    from compute_agent.worker import main

    raise SystemExit(main())
