"""Hypervisor drivers behind one small interface (base.Driver). Import a concrete driver (the
libvirt package) only where it is chosen (the worker), so that the rest of the agent never loads
libvirt."""
