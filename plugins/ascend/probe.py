"""Find Huawei Ascend NPUs through pyACL (`import acl`, shipped with CANN, not on PyPI).

pyACL returns `(value, ret)`, the reverse of cuda-python; `ret` 0 is success.
"""

from __future__ import annotations

from typing import Any

from prism_core.models import Device, Unavailable
from prism_core.vendor import import_vendor, vendor_call

VENDOR = "ascend"
HINT = "install Huawei CANN and source its set_env.sh (pyACL is not on PyPI)"
ACL_HBM_MEM = 1  # aclrtMemAttr: high-bandwidth memory


class AclError(RuntimeError):
    def __init__(self, call: str, ret: int) -> None:
        super().__init__(f"{call} returned ACL error {ret}")


def _ok(call: str, ret: int) -> None:
    if ret != 0:
        raise AclError(call, ret)


def probe() -> list[Device] | Unavailable:
    acl = import_vendor("acl", VENDOR, HINT)
    if isinstance(acl, Unavailable):
        return acl
    return vendor_call(VENDOR, lambda: _enumerate(acl))


def _enumerate(acl: Any) -> list[Device]:
    _ok("aclInit", acl.init())
    try:
        count, ret = acl.rt.get_device_count()
        _ok("aclrtGetDeviceCount", ret)
        soc = str(acl.get_soc_name())
        devices = []
        for i in range(count):
            _ok("aclrtSetDevice", acl.rt.set_device(i))
            try:
                _free, total, ret = acl.rt.get_mem_info(ACL_HBM_MEM)
                _ok("aclrtGetMemInfo", ret)
            finally:
                acl.rt.reset_device(i)
            devices.append(Device(id=f"{VENDOR}:{i}", vendor=VENDOR, index=i, name=soc, memory_total_bytes=int(total)))
        return devices
    finally:
        acl.finalize()
