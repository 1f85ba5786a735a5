"""What the extra specs Kumo knows may hold (Nova validates known extra specs from 2.86).

A rule names a key (a regular expression where the key carries a parameter, e.g. a NUMA node
number) and its value: an integer in a range, a boolean, one of a set of words, or a pattern. A key
no rule names is stored as given: operators keep their own namespaces, and Nova's many
driver-specific keys that Kumo's hosts do not read are not refused either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cloud import errors

_BOOL_WORDS = frozenset({"1", "0", "t", "f", "true", "false", "on", "off", "y", "n", "yes",
                         "no"})


@dataclass(frozen=True)
class Rule:
    key: str  # a regular expression matched against the whole key
    kind: str  # "int", "bool", "enum" or "pattern"
    minimum: int | None = None
    maximum: int | None = None
    words: tuple[str, ...] = ()
    pattern: str = ""

    def problem(self, value: str) -> str | None:
        if self.kind == "bool":
            return None if value.strip().lower() in _BOOL_WORDS else \
                f"'{value}' is not a valid boolean-like value."
        if self.kind == "enum":
            return None if value in self.words else \
                f"'{value}' is not one of: {', '.join(self.words)}."
        if self.kind == "pattern":
            return None if re.fullmatch(self.pattern, value) else \
                f"'{value}' is not of the format '{self.pattern}'."
        try:
            number = int(value)
        except ValueError:
            return f"'{value}' is not a valid integer value."
        if self.maximum is not None and number > self.maximum:
            return f"'{value}' is greater than the max value of '{self.maximum}'."
        if self.minimum is not None and number < self.minimum:
            return f"'{value}' is less than the min value of '{self.minimum}'."
        return None


def _int(key: str, minimum: int | None = 0, maximum: int | None = None) -> Rule:
    return Rule(key, "int", minimum=minimum, maximum=maximum)


def _enum(key: str, *words: str) -> Rule:
    return Rule(key, "enum", words=words)


RULES: tuple[Rule, ...] = (
    _enum("hw:cpu_policy", "dedicated", "shared", "mixed"),
    _enum("hw:cpu_thread_policy", "prefer", "isolate", "require"),
    _enum("hw:emulator_threads_policy", "share", "isolate"),
    _int("hw:cpu_sockets", 1), _int("hw:cpu_cores", 1), _int("hw:cpu_threads", 1),
    _int("hw:cpu_max_sockets", 1), _int("hw:cpu_max_cores", 1), _int("hw:cpu_max_threads", 1),
    Rule("hw:cpu_realtime", "bool"),
    Rule("hw:cpu_realtime_mask", "pattern", pattern=r"\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"),
    _int("hw:numa_nodes", 1),
    Rule(r"hw:numa_cpus\.\d+", "pattern", pattern=r"\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"),
    _int(r"hw:numa_mem\.\d+", 1),
    Rule("hw:mem_page_size", "pattern", pattern=r"(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)"),
    _enum("hw:watchdog_action", "none", "pause", "poweroff", "reset", "disabled"),
    Rule("hw:boot_menu", "bool"),
    Rule("hw:vif_multiqueue_enabled", "bool"),
    Rule("hw:pmu", "bool"),
    _int("hw:serial_port_count", 0),
    Rule("hw:hide_hypervisor_id", "bool"),
    Rule("hw:mem_encryption", "bool"),
    Rule("hw:tpm_version", "enum", words=("1.2", "2.0")),
    _enum("hw:tpm_model", "tpm-tis", "tpm-crb"),
    Rule("hw_rng:allowed", "bool"),
    _int("hw_rng:rate_bytes", 0), _int("hw_rng:rate_period", 0),
    _int("hw_video:ram_max_mb", 0),
    _enum("os:secure_boot", "required", "disabled", "optional"),
    _int(r"quota:(cpu_shares|cpu_period|cpu_quota|cpu_reservation|cpu_limit|memory_limit"
         r"|memory_reservation|memory_shares_share|disk_io_limit|disk_io_reservation"
         r"|disk_io_shares_share|vif_limit|vif_reservation|vif_shares_share"
         r"|(disk|vif)_(read|write|total)_(bytes|iops)_sec(_max)?"
         r"|disk_(read|write|total)_(bytes|iops)_sec_max_length|disk_size_iops_sec"
         r"|vif_inbound_(average|peak|burst)|vif_outbound_(average|peak|burst))"),
    _enum(r"quota:(cpu|memory|disk_io|vif)_shares_level", "custom", "high", "normal", "low"),
    _int(r"resources\d*:[A-Z0-9_]+", 0),
    _enum(r"trait\d*:[A-Z0-9_]+", "required", "forbidden"),
)


def check(specs: dict[str, str]) -> None:
    """400 for the first known extra spec whose value its rule refuses."""
    for key, value in specs.items():
        for rule in RULES:
            if re.fullmatch(rule.key, key):
                problem = rule.problem(value)
                if problem:
                    raise errors.BadRequest(f"Validation failed; {problem}")
                break
