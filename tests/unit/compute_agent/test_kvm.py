"""KVM is used only when it demonstrably works: device, hardware virtualisation, a probe guest."""

from __future__ import annotations

from pathlib import Path

import pytest

from compute_agent import kvm


@pytest.mark.parametrize(
    "flags, expected",
    [("fpu vme vmx sse", True), ("fpu svm", True), ("fpu vme sse hypervisor", False)],
)
def test_hardware_virtualisation_is_read_from_the_cpu_flags(
    tmp_path: Path, flags: str, expected: bool
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert kvm.hardware_virtualisation(str(cpuinfo)) is expected


def test_no_cpuinfo_means_no_kvm(tmp_path: Path) -> None:
    assert kvm.hardware_virtualisation(str(tmp_path / "missing")) is False


def test_the_probe_guest_is_one_bootable_sector() -> None:
    assert len(kvm.PROBE_BOOT_SECTOR) == 512
    assert kvm.PROBE_BOOT_SECTOR.endswith(b"\x55\xaa")


def test_without_a_usable_kvm_a_local_qemu_uri_gets_tcg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kvm, "kvm_usable", lambda: False)
    assert kvm.detect_domain_type("qemu:///system") == "qemu"


def test_with_a_working_kvm_a_local_qemu_uri_gets_kvm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kvm, "kvm_usable", lambda: True)
    assert kvm.detect_domain_type("qemu:///system") == "kvm"


def test_a_remote_or_test_uri_is_never_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> bool:
        raise AssertionError("probed")

    monkeypatch.setattr(kvm, "kvm_usable", refuse)
    assert kvm.detect_domain_type("qemu+ssh://root@h/system") == "qemu"
    assert kvm.detect_domain_type("test:///default") == "test"
    with pytest.raises(ValueError):
        kvm.detect_domain_type("xen:///system")


def test_kvm_is_not_used_where_the_cpu_cannot_virtualise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    device = tmp_path / "kvm"
    device.write_text("")
    monkeypatch.setattr(kvm, "KVM_DEVICE", str(device))
    monkeypatch.setattr(kvm, "hardware_virtualisation", lambda: False)
    monkeypatch.setattr(kvm, "probe_guest_runs", lambda: True)
    assert kvm.kvm_usable() is False
