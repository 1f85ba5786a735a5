"""Console output: a synthetic log on the test driver, the tail of the real log otherwise."""

from __future__ import annotations

from pathlib import Path

from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.drivers.libvirt.console import _tail


def test_console_output_on_the_test_driver_is_a_synthetic_log_cut_to_length(
    driver: LibvirtDriver, running: str
) -> None:
    output = driver.console_output(running, 3)
    assert len(output.split("\n")) == 3  # Tempest counts lines exactly so
    assert running in output and "test driver" in output
    assert len(driver.console_output(running, None).splitlines()) == 10


def test_console_output_reads_the_tail_of_the_log(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert _tail(log, 3) == "line 97\nline 98\nline 99"  # no newline after the last, as Nova
    assert _tail(log, None).count("\n") == 100
    assert _tail(log, 0) == ""
    assert _tail(tmp_path / "missing.log", 5) == ""
