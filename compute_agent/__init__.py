"""The per-host compute agent. It never imports Django or `cloud`: it reaches the database only by
sending reports to the conductor (see messages.py, the contract both sides share)."""
