"""Discovery: load and check data, judge whether it represents the people it is about, check it
against its human-written collection plan, find proxy features, and write its datasheet.

The discovery stage's verdict is the datasheet's: representativeness and the collection plan.
"""

from kfp_rai.discovery._dataset import DatasetSummary, split_dataset, validate_dataset
from kfp_rai.discovery._datasheet import DatasheetReport, GroupQuality, group_quality, quality_notes, write_datasheet
from kfp_rai.discovery._personal import PersonalColumn, detect_personal_data, personal_values
from kfp_rai.discovery._plan import CollectionPlan, check_plan
from kfp_rai.discovery._privacy import (
    PrivacyPlan,
    check_key,
    hmac_key_from_env,
    load_labelled,
    plan_privacy,
    prepare_dataset,
    pseudonym,
    pseudonymize_columns,
    screen_stream,
)
from kfp_rai.discovery._proxies import (
    Association,
    associations_from_dicts,
    correlation_ratio,
    cramers_v,
    find_proxies,
    known_proxies,
    proxy_features,
)
from kfp_rai.discovery._reference import ReferencePopulation
from kfp_rai.discovery._representativeness import (
    GoodnessOfFit,
    GroupShare,
    Representation,
    RepresentativenessReport,
    check_representativeness,
    judge_shares,
)

__all__ = [
    "Association",
    "CollectionPlan",
    "DatasheetReport",
    "GroupQuality",
    "associations_from_dicts",
    "check_plan",
    "correlation_ratio",
    "cramers_v",
    "find_proxies",
    "group_quality",
    "known_proxies",
    "proxy_features",
    "quality_notes",
    "write_datasheet",
    "DatasetSummary",
    "PersonalColumn",
    "PrivacyPlan",
    "GoodnessOfFit",
    "GroupShare",
    "ReferencePopulation",
    "Representation",
    "RepresentativenessReport",
    "check_key",
    "check_representativeness",
    "detect_personal_data",
    "hmac_key_from_env",
    "personal_values",
    "plan_privacy",
    "screen_stream",
    "load_labelled",
    "prepare_dataset",
    "pseudonym",
    "pseudonymize_columns",
    "judge_shares",
    "split_dataset",
    "validate_dataset",
]
