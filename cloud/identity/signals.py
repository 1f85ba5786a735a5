"""What identity announces before it deletes a project or a user, so that other domains can refuse
(raise errors.Conflict while they still hold live resources of it) or clear the history rows that
reference it. Identity itself knows nothing of servers, images or networks.

Receivers run inside the deleting transaction, so what they remove goes with the project or not
at all.
"""

from __future__ import annotations

from django.dispatch import Signal

# Receivers get `project=Project`.
PROJECT_DELETING = Signal()
# Receivers get `user=User`.
USER_DELETING = Signal()
