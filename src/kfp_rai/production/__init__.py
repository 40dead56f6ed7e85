"""Production: the model card (the production gate), a versioned registry with a signed history
of people's decisions (approve, reject, promote, roll back), and deployment of what production names.

The production stage's verdict is the card's (blocked: failed) or, once registered,
:func:`registration_verdict`.
"""

from kfp_rai.production._approval import (
    Servable,
    authorizing_event,
    check_approval_event,
    registry_of,
    servable_version,
)
from kfp_rai.production._candidate import (
    HUMAN_FILES,
    blocked_verdict,
    check_registry,
    open_registry,
    register_candidate,
)
from kfp_rai.production._deploy import DeploymentReport, deploy_model, deploy_production
from kfp_rai.production._events import Event, EventLog
from kfp_rai.production._governance import (
    POLICY_FILE,
    approve,
    archive,
    promote,
    read_state,
    record_deployment,
    reject,
    rollback,
    verified_version,
    version_policy,
)
from kfp_rai.production._history import card_with_history
from kfp_rai.production._inference_service import (
    inference_service,
    manifest_yaml,
    render_audit_claims,
    render_inference_service,
    storage_uri,
)
from kfp_rai.production._model_card import ModelCard, build_model_card, production_gate
from kfp_rai.production._registry import (
    ModelRegistry,
    RegisteredModel,
    check_registrable,
    registration_verdict,
    validate_model_name,
)
from kfp_rai.production._state import ALIASES, CHALLENGER, PRODUCTION, ModelState, RuleBroken, VersionRecord
from kfp_rai.production._verify import verify_registry

__all__ = [
    "ALIASES",
    "CHALLENGER",
    "HUMAN_FILES",
    "POLICY_FILE",
    "PRODUCTION",
    "DeploymentReport",
    "Event",
    "EventLog",
    "ModelCard",
    "ModelRegistry",
    "ModelState",
    "RegisteredModel",
    "RuleBroken",
    "Servable",
    "VersionRecord",
    "approve",
    "archive",
    "authorizing_event",
    "blocked_verdict",
    "build_model_card",
    "card_with_history",
    "check_approval_event",
    "check_registrable",
    "check_registry",
    "deploy_model",
    "deploy_production",
    "inference_service",
    "manifest_yaml",
    "open_registry",
    "production_gate",
    "promote",
    "read_state",
    "record_deployment",
    "register_candidate",
    "registration_verdict",
    "registry_of",
    "reject",
    "render_audit_claims",
    "render_inference_service",
    "rollback",
    "servable_version",
    "storage_uri",
    "validate_model_name",
    "verified_version",
    "verify_registry",
    "version_policy",
]
