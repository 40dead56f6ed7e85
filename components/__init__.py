"""kfp-rai: Kubeflow Pipelines components that make responsible AI enforceable.

The logic lives in the stage packages (``kfp_rai.discovery``, ``.training``, ``.validation``,
``.explainability``, ``.production``, ``.refresh``) and never imports kfp; the kfp components are
in ``kfp_rai.components`` and the pipelines in ``kfp_rai.pipelines``.
"""

from kfp_rai._version import __version__
from kfp_rai.errors import (
    DataValidationError,
    GateFailedError,
    IntegrityError,
    InvalidParameterError,
    RAIError,
)
from kfp_rai.policy import Policy

__all__ = [
    "DataValidationError",
    "GateFailedError",
    "IntegrityError",
    "InvalidParameterError",
    "Policy",
    "RAIError",
    "__version__",
]
