"""Memory: VMM interface, elastic KV pool and the per-device broker."""

from prism_core.memory.vmm import VmmBackend

__all__ = ["VmmBackend"]
