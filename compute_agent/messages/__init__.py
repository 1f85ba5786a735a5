"""The message contract between the control plane (`cloud`) and the compute agents.

Plain dataclasses, serialised to JSON-safe dicts. Both sides import this module and nothing else of
each other. CONTRACT_VERSION's major part changes only when a field is removed or changes meaning;
receivers ignore fields they do not know, so adding a field is a minor change.

The package splits it by subject (names, base, requests, reports, stats, volumes); every name is imported
from here, `compute_agent.messages`, as one module.
"""

from compute_agent.messages.base import *
from compute_agent.messages.names import *
from compute_agent.messages.reports import *
from compute_agent.messages.requests import *
from compute_agent.messages.stats import *
from compute_agent.messages.task_headers import *
from compute_agent.messages.volumes import *
