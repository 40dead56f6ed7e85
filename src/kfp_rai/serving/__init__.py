"""Serving: the model server's logic (validated predictions, alerts), the audit trail and the
kill switch. Never imports kfp."""

from kfp_rai.serving._audit import AuditLog, verify_audit_log
from kfp_rai.serving._http import serve
from kfp_rai.serving._killswitch import disable, disabled_reason, enable
from kfp_rai.serving._service import ModelService

__all__ = ["AuditLog", "ModelService", "disable", "disabled_reason", "enable", "serve", "verify_audit_log"]
