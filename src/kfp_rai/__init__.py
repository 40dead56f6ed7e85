"""kfp-rai: Kubeflow Pipelines components that make responsible AI enforceable.

The library lives here and never imports kfp: the stage packages (``kfp_rai.discovery``,
``.training``, ``.validation``, ``.explainability``, ``.production``, ``.refresh``), shared
plumbing (``kfp_rai.core``, ``kfp_rai.stats``), the serving app (``kfp_rai.serving``) and the
:class:`Policy`. The kfp components are in ``kfp_rai.components`` and the pipelines in
``kfp_rai.pipelines``.
"""

from kfp_rai._version import __version__
from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.errors import (
    DataValidationError,
    DeploymentError,
    GateFailedError,
    IntegrityError,
    InvalidParameterError,
    RAIError,
)
from kfp_rai.policy import Policy

__all__ = [
    "DataValidationError",
    "DeploymentError",
    "Finding",
    "GateFailedError",
    "GateStatus",
    "IntegrityError",
    "InvalidParameterError",
    "Policy",
    "RAIError",
    "Verdict",
    "__version__",
]
