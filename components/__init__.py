"""Every kfp component of kfp-rai, importable from one place::

    from kfp_rai.components import validate_model, check_representativeness

One module per lifecycle stage; each component is a thin adapter over the logic in ``kfp_rai``.
"""

from kfp_rai.components.discovery import check_representativeness, load_dataset, split_dataset, write_datasheet
from kfp_rai.components.production import (
    check_registry,
    deploy_model,
    register_model,
    stop_blocked_model,
    write_model_card,
)
from kfp_rai.components.refresh import (
    combine_datasets,
    compare_models,
    detect_drift,
    list_partitions,
    merge_drift,
    monitor_model,
    notify_challenger,
    resolve_champion,
    summarize_partition,
)
from kfp_rai.components.training import train_model
from kfp_rai.components.validation import (
    count_scored_partition,
    explain_model,
    merge_fairness,
    validate_model,
)

__all__ = [
    "combine_datasets",
    "compare_models",
    "check_registry",
    "check_representativeness",
    "count_scored_partition",
    "deploy_model",
    "detect_drift",
    "explain_model",
    "list_partitions",
    "load_dataset",
    "merge_drift",
    "merge_fairness",
    "monitor_model",
    "notify_challenger",
    "register_model",
    "resolve_champion",
    "split_dataset",
    "stop_blocked_model",
    "summarize_partition",
    "train_model",
    "validate_model",
    "write_datasheet",
    "write_model_card",
]
