"""Project quotas. (Being implemented: see issue 4.)"""

from __future__ import annotations


def reserve(project_id: str, deltas: dict[str, int]) -> None:
    """Inside the caller's transaction: lock the project, check usage + deltas against limits,
    raise errors.OverLimit if any would be exceeded. Usage is counted from the rows that exist."""
    return
