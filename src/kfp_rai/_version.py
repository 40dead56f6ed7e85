"""The package version, in one place (the image tag follows it)."""

__version__ = "0.1.0"
