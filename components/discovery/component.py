"""Discovery components: load, split, check representativeness."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output

from kfp_rai._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def load_dataset(
    source: str,
    target: str,
    positive_label: str,
    sensitive_features: list[str],
    dataset: Output[Dataset],
    pseudonymize: list[str] = [],  # noqa: B006 - kfp takes literal defaults
) -> NamedTuple("LoadOutputs", rows=int, positive_rate=float):
    """Load a CSV or parquet file (or ``bundled:adult``) and check it can be used.

    Writes the data as zstd parquet with ``rows``, ``columns``, ``sha256`` and ``schema`` in the
    artifact metadata. Fails with a clear message if a column is missing, the target does not
    have exactly two classes including ``positive_label``, or the data is empty.

    ``pseudonymize`` names identifier columns to replace by HMAC-SHA256 pseudonyms before anything
    is written; the key comes from ``KFP_RAI_HMAC_KEY`` (the Secret ``kfp-rai-pseudonymization`` in
    a cluster). Without a key the task fails rather than write raw identifiers.
    """
    from collections import namedtuple

    from kfp_rai.discovery import hmac_key_from_env, pseudonymize_columns, validate_dataset
    from kfp_rai.io import read_table, write_table

    df = read_table(source, text_columns=pseudonymize)
    summary = validate_dataset(df, target=target, positive_label=positive_label, sensitive_features=sensitive_features)
    key = hmac_key_from_env() if pseudonymize else None
    df = pseudonymize_columns(df, pseudonymize, key=key, protected=[target, *sensitive_features])
    dataset.metadata.update(write_table(df, dataset.path))
    dataset.metadata.update(
        {"source": source, "positive_rate": summary.positive_rate, "identifier_columns": list(pseudonymize)}
    )
    return namedtuple("LoadOutputs", ["rows", "positive_rate"])(summary.rows, summary.positive_rate)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def split_dataset(
    dataset: Input[Dataset],
    target: str,
    test_size: float,
    seed: int,
    train: Output[Dataset],
    test: Output[Dataset],
):
    """Split a data set into train and test, stratified on ``target``, reproducible by ``seed``."""
    from kfp_rai.discovery import split_dataset as split
    from kfp_rai.io import read_table, write_table

    df = read_table(dataset.path, format="parquet")
    train_df, test_df = split(df, target=target, test_size=test_size, seed=seed)
    for artifact, part in ((train, train_df), (test, test_df)):
        artifact.metadata.update(write_table(part, artifact.path))
        artifact.metadata.update(
            {
                "parent_sha256": dataset.metadata.get("sha256", ""),
                "seed": seed,
                "identifier_columns": dataset.metadata.get("identifier_columns", []),
            }
        )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def check_representativeness(
    dataset: Input[Dataset],
    sensitive_features: list[str],
    reference_population: str,
    policy: str,
    report: Output[Artifact],
    report_html: Output[HTML],
    metrics: Output[Metrics],
    fail_on_violation: bool = False,
) -> NamedTuple("GateOutputs", passed=bool, reason=str):
    """Compare each group's share of the data with a cited reference population.

    ``reference_population`` is the YAML text of a reference file (empty: the bundled US Census
    2000 shares for Adult's ``sex`` and ``race``); ``policy`` is the YAML text of a Policy (empty:
    defaults). Returns ``passed`` and a one-line ``reason``; groups below the policy's ratio or
    minimum size fail closed. ``fail_on_violation=True`` raises GateFailedError instead.
    """
    from collections import namedtuple

    from kfp_rai._artifacts import lineage, loggable_metrics, write_report
    from kfp_rai.discovery import ReferencePopulation
    from kfp_rai.discovery import check_representativeness as check
    from kfp_rai.errors import GateFailedError
    from kfp_rai.io import read_table
    from kfp_rai.policy import Policy

    rules = Policy.from_yaml(policy)
    ref = (
        ReferencePopulation.from_yaml(reference_population)
        if reference_population.strip()
        else ReferencePopulation.default()
    )
    df = read_table(dataset.path, format="parquet")
    result = check(df, ref, sensitive_features=sensitive_features, policy=rules.representativeness)
    write_report(result, report.path, html_path=report_html.path)
    report.metadata.update(lineage(rules, data_sha256=dataset.metadata.get("sha256", "")))
    ratios = {f"share_ratio.{g.attribute}.{g.group}": g.ratio for g in result.groups}
    for name, value in loggable_metrics(ratios).items():
        metrics.log_metric(name, value)
    if fail_on_violation and not result.passed:
        raise GateFailedError(f"representativeness: {result.reason}")
    return namedtuple("GateOutputs", ["passed", "reason"])(result.passed, result.reason)
