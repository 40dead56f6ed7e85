"""Discovery: load and check data, and judge whether it represents the people it is about.

The discovery stage's verdict is the representativeness report's verdict.
"""

from kfp_rai.discovery._dataset import DatasetSummary, split_dataset, validate_dataset
from kfp_rai.discovery._personal import PersonalColumn, PrivacyPlan, detect_personal_data, plan_privacy
from kfp_rai.discovery._privacy import (
    check_key,
    hmac_key_from_env,
    prepare_dataset,
    pseudonym,
    pseudonymize_columns,
)
from kfp_rai.discovery._representativeness import (
    GroupShare,
    ReferencePopulation,
    RepresentativenessReport,
    check_representativeness,
)

__all__ = [
    "DatasetSummary",
    "PersonalColumn",
    "PrivacyPlan",
    "GroupShare",
    "ReferencePopulation",
    "RepresentativenessReport",
    "check_key",
    "check_representativeness",
    "detect_personal_data",
    "hmac_key_from_env",
    "plan_privacy",
    "prepare_dataset",
    "pseudonym",
    "pseudonymize_columns",
    "split_dataset",
    "validate_dataset",
]
