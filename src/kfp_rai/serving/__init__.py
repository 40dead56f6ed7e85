"""Serving: the model server's logic (verified model, validated predictions, alerts), the audit
trail and the kill switch, and the KServe model server over them. Never imports kfp.

The KServe server (:class:`Server`, :func:`build_app`, :class:`Tokens`, :class:`Limits`) is imported
on first use: kserve takes a second to import, and the audit and kill-switch commands need none of it.
"""

from typing import Any

from kfp_rai.core.state import default_state_dir, safe_state_dir
from kfp_rai.serving._audit import (
    DEVELOPMENT_KEY,
    AuditCheck,
    AuditLog,
    LogIndex,
    audit_key_from_env,
    default_checkpoints,
    index_for,
    verify_audit_log,
)
from kfp_rai.serving._killswitch import disable, disabled_reason, enable
from kfp_rai.serving._service import ModelService, RequestRejected, ServedModel, ServingDisabled, load_served_model

_SERVER = ("Server", "build_app", "start_in_thread")
_GATE = ("Limits", "Tokens")


def __getattr__(name: str) -> Any:
    if name in _SERVER:
        from kfp_rai.serving import _kserve

        return getattr(_kserve, name)
    if name in _GATE:
        from kfp_rai.serving import _gate

        return getattr(_gate, name)
    raise AttributeError(f"module 'kfp_rai.serving' has no attribute {name!r}")


__all__ = [
    "DEVELOPMENT_KEY",
    "AuditCheck",
    "AuditLog",
    "Limits",
    "LogIndex",
    "ModelService",
    "RequestRejected",
    "ServedModel",
    "Server",
    "ServingDisabled",
    "Tokens",
    "audit_key_from_env",
    "build_app",
    "default_checkpoints",
    "default_state_dir",
    "disable",
    "disabled_reason",
    "enable",
    "index_for",
    "load_served_model",
    "safe_state_dir",
    "start_in_thread",
    "verify_audit_log",
]
