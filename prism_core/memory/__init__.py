"""Memory: VMM interface, elastic KV pool and the per-device broker."""

from prism_core.memory.blocks import BlockTable
from prism_core.memory.broker import Broker, Member
from prism_core.memory.cache import ElasticKVCache
from prism_core.memory.handles import HandlePool
from prism_core.memory.ranges import RangeBook
from prism_core.memory.report import KvUsage, LedgerInfo, ShareInfo
from prism_core.memory.results import CannotSchedule, Grant
from prism_core.memory.spec import DEFAULT_PAGE_SIZE, KvSpec
from prism_core.memory.views import Geometry, Layout
from prism_core.memory.vmm import VmmBackend, VmmError, map_all, unmap_all

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "BlockTable",
    "Broker",
    "CannotSchedule",
    "ElasticKVCache",
    "Geometry",
    "Grant",
    "HandlePool",
    "KvSpec",
    "KvUsage",
    "Layout",
    "LedgerInfo",
    "Member",
    "RangeBook",
    "ShareInfo",
    "VmmBackend",
    "VmmError",
    "map_all",
    "unmap_all",
]
