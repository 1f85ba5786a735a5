"""Enrollment: how a machine becomes a compute host with a broker credential of its own.

An admin issues a one-time join token for a host name (join_tokens.py); the machine trades it for
its broker user and secret (host_credentials.py, broker users made by broker_users.py); the
conductor refuses a report that did not come from the host it names (report_senders.py).
docs/adding-a-host.md is the operator's side.
"""
