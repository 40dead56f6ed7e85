"""IMAGE: the one container image every component and the serving app run in.

Its tag equals the package version so that a compiled pipeline names exactly the code it runs.
``KFP_RAI_IMAGE`` overrides it (private registries) at import time, i.e. before compiling.
"""

import os

from kfp_rai._version import __version__

DEFAULT_IMAGE = f"ghcr.io/kfp-rai/kfp-rai:{__version__}"
IMAGE = os.environ.get("KFP_RAI_IMAGE", "") or DEFAULT_IMAGE
