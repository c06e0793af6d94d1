"""pyACL runtime set-up shared by the Ascend timing backend and sampler.

pyACL returns `(value, ret)` from queries and a bare `ret` from actions; 0 is success. `acl.init()` may already
have run in this process (torch_npu calls it), which ACL reports as ACL_ERROR_REPEAT_INITIALIZE: that is fine,
and Prism then leaves finalisation to whoever initialised first. Prism never calls `acl.finalize()` outside the
probe, so it cannot pull the runtime from under torch_npu.
"""

from __future__ import annotations

from typing import Any

from prism_plugins.ascend.probe import AclError

ACL_ERROR_REPEAT_INITIALIZE = 100002


def ok(call: str, ret: int) -> None:
    if ret != 0:
        raise AclError(call, ret)


def value(call: str, result: tuple[Any, ...]) -> Any:
    """Unpack a pyACL `(value..., ret)` query."""
    *values, ret = result
    ok(call, ret)
    return values[0] if len(values) == 1 else tuple(values)


def ensure_init(acl: Any) -> None:
    ret = acl.init()
    if ret not in (0, ACL_ERROR_REPEAT_INITIALIZE):
        raise AclError("aclInit", ret)
