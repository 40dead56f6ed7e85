"""Drift and fairness of partitioned data at scale: one task per partition (``dsl.ParallelFor``),
each writing a mergeable summary, merged exactly by one task. KFP is the distributed engine; the
result equals a single pass over the whole data set (a test runs both through kfp.local).

Both take their inputs by URI (``dsl.importer``): a directory of parquet files in the artifact
store, and, for drift, a model directory (a registry version) whose stored reference summary is
the reference.
"""

from kfp import dsl

from kfp_rai.components import (
    count_scored_partition,
    list_partitions,
    merge_drift,
    merge_fairness,
    summarize_partition,
)
from kfp_rai.pipelines.stages import resources as _resources  # at most 8 partitions at a time (ParallelFor)


@dsl.pipeline(
    name="kfp-rai-partitioned-drift",
    description="Drift of a partitioned data set against a model's stored reference summary, one task per partition.",
)
def partitioned_drift(current_uri: str, model_uri: str, policy: str = ""):
    """Drift of partitioned current data, fanned out over its partitions and merged.

    Args:
        current_uri: URI of the current data: a directory of parquet files (e.g. minio://bucket/current/).
        model_uri: URI of the model directory (a registry version) holding its reference summary.
        policy: YAML text of a kfp-rai policy (its drift section); empty uses the defaults.
    """
    current = dsl.importer(artifact_uri=current_uri, artifact_class=dsl.Dataset, reimport=True)
    model = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model, reimport=True)
    for imported in (current, model):
        imported.set_caching_options(False)
    # No task is answered from the cache: the same URI may hold new data on every run.
    parts = list_partitions(data=current.output).set_caching_options(False)
    with dsl.ParallelFor(items=parts.output, parallelism=8) as partition:
        summary = _resources(summarize_partition(data=current.output, partition=partition, model=model.output))
        summary.set_caching_options(False)
    merged = merge_drift(summaries=dsl.Collected(summary.outputs["summary"]), model=model.output, policy=policy)
    merged.set_caching_options(False)


@dsl.pipeline(
    name="kfp-rai-partitioned-fairness",
    description="Per-group performance and fairness of a partitioned scored data set, one task per partition.",
)
def partitioned_fairness(
    scored_uri: str,
    target: str,
    prediction: str,
    sensitive_features: list,
    score: str = "",
    positive_label: str = "",
    policy: str = "",
    seed: int = 0,
):
    """Fairness of a partitioned scored data set, fanned out over its partitions and merged.

    Args:
        scored_uri: URI of the scored data: a directory of parquet files.
        target: The true label column.
        prediction: The predicted label column.
        sensitive_features: The sensitive attribute columns (their intersection is reported too).
        score: The predicted probability column (for ROC AUC); empty: none.
        positive_label: The positive label when target and prediction are text; empty: they are 0/1.
        policy: YAML text of a kfp-rai policy (its validation section); empty uses the defaults.
        seed: Bootstrap seed.
    """
    scored = dsl.importer(artifact_uri=scored_uri, artifact_class=dsl.Dataset, reimport=True)
    scored.set_caching_options(False)
    parts = list_partitions(data=scored.output).set_caching_options(False)  # new data under the same URI
    with dsl.ParallelFor(items=parts.output, parallelism=8) as partition:
        counted = _resources(
            count_scored_partition(
                data=scored.output,
                partition=partition,
                target=target,
                prediction=prediction,
                sensitive_features=sensitive_features,
                score=score,
                positive_label=positive_label,
                policy=policy,
            )
        ).set_caching_options(False)
    merge_fairness(counts=dsl.Collected(counted.outputs["counts"]), policy=policy, seed=seed).set_caching_options(False)
