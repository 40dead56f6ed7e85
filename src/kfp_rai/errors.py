"""The exception tree of kfp-rai.

::

    RAIError                                  base of everything kfp-rai raises on purpose
    ├── InvalidParameterError(ValueError)     an argument, option or policy value is wrong
    ├── DataValidationError(ValueError)       the data cannot be used as given (file, columns, labels)
    ├── GateFailedError                       a gate judged "not passed" and the caller asked for a hard stop
    └── IntegrityError                        a hash does not match: tampered or corrupted artifact

Messages say what was wrong, where, and what to do; the CLI prints them as one line.
"""


class RAIError(Exception):
    """Base class of every error kfp-rai raises on purpose."""


class InvalidParameterError(RAIError, ValueError):
    """An argument, CLI option or policy value is invalid."""


class DataValidationError(RAIError, ValueError):
    """Input data is missing, empty, or does not fit what was asked of it."""


class GateFailedError(RAIError):
    """A gate did not pass and ``fail_on_violation=True`` asked for a hard stop."""


class IntegrityError(RAIError):
    """An artifact's sha256 does not match the recorded one."""


class DeploymentError(RAIError):
    """The cluster refused or could not take a deployment (missing serving app, RBAC, API error)."""
