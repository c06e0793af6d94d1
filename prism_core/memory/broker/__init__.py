"""The per-device memory broker across processes, and its shared-memory ledger."""

from prism_core.memory.broker.broker import Broker, Member, sweep
from prism_core.memory.broker.ledger import ENV_DIR, VERSION, Ledger, broker_dir, ledger_path

__all__ = ["ENV_DIR", "VERSION", "Broker", "Ledger", "Member", "broker_dir", "ledger_path", "sweep"]
