"""Block storage (Cinder's job): volumes, their snapshots and types, and their attachments to
servers. The data lives on volume hosts (compute_agent volume mode, docs/volumes.md); these rows
are what the control plane knows of it."""
