"""Serving: the model server's logic (verified model, validated predictions, alerts), the audit
trail and the kill switch. Never imports kfp."""

from kfp_rai.serving._audit import (
    DEVELOPMENT_KEY,
    AuditCheck,
    AuditLog,
    audit_key_from_env,
    default_checkpoints,
    verify_audit_log,
)
from kfp_rai.serving._http import serve
from kfp_rai.serving._killswitch import default_state_dir, disable, disabled_reason, enable, safe_state_dir
from kfp_rai.serving._service import ModelService, load_served_model

__all__ = [
    "DEVELOPMENT_KEY",
    "AuditCheck",
    "AuditLog",
    "ModelService",
    "audit_key_from_env",
    "default_checkpoints",
    "default_state_dir",
    "disable",
    "disabled_reason",
    "enable",
    "load_served_model",
    "safe_state_dir",
    "serve",
    "verify_audit_log",
]
