"""`python -m compute_agent`: run this host's compute agent (see compute_agent.worker),
`python -m compute_agent join URL TOKEN` to make this machine a host first (compute_agent.join),
or `python -m compute_agent volume …` to run a volume host (compute_agent.volume_worker)."""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["join"]:
        from compute_agent.join import main as join_main

        raise SystemExit(join_main(sys.argv[2:]))
    if sys.argv[1:2] == ["volume"]:
        from compute_agent.volume_worker import main as volume_main

        raise SystemExit(volume_main(sys.argv[2:]))
    from compute_agent.worker import main

    raise SystemExit(main())
