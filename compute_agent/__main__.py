"""`python -m compute_agent`: run this host's compute agent (see compute_agent.worker)."""

from compute_agent.worker import main

if __name__ == "__main__":
    raise SystemExit(main())
