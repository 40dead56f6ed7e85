"""Training component."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from kfp_rai._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train_model(
    train: Input[Dataset],
    target: str,
    positive_label: str,
    sensitive_features: list[str],
    policy: str,
    seed: int,
    model: Output[Model],
    model_name: str = "",
    datasheet: Input[Artifact] = None,
) -> NamedTuple("GateOutputs", status=str, passed=bool, reason=str):
    """Train one-hot encoding + HistGradientBoostingClassifier, seeded, and save it with skops.

    Sensitive features are not model inputs unless the policy's training.use_sensitive_features
    says so; identifier columns (pseudonymized at load) never are; proxies of a sensitive attribute
    are left out when the policy's proxies.drop_from_training says so (from the datasheet, else
    measured on the training data). Training fails when the model predicts a single class for
    every training row: it learned nothing a gate could judge.

    Args:
        train: The training data (from split_dataset).
        target: The label column.
        positive_label: The favourable value of the label.
        sensitive_features: Columns holding the attributes fairness is judged on.
        policy: YAML text of a kfp-rai policy (its training section sets the hyperparameters); empty uses the
            defaults.
        seed: Random seed of the estimator.
        model_name: The model's name, recorded in its metadata; empty derives it from the training data's
            source.
        datasheet: The datasheet (from write_datasheet) naming the proxies; optional.

    Returns:
        status: The training stage's verdict: passed, or failed for a model that predicts one class only.
        passed: True when a usable model was trained.
        reason: One line: what was trained on how many rows, or why it failed.
        model: A directory with model.skops (never pickle), metadata.json (name, sha256, features, training
            summary, training verdict, lineage) and reference_summary.json (the training data's drift summary:
            refresh compares with it and never re-reads the training data), signed as a whole.
    """
    import json
    from collections import namedtuple
    from dataclasses import asdict

    from kfp_rai.core.bundled import default_model_name
    from kfp_rai.core.evidence import gate_outputs, lineage
    from kfp_rai.core.model_dir import REFERENCE_FILE, save_model_dir
    from kfp_rai.core.tables import read_table
    from kfp_rai.policy import Policy
    from kfp_rai.refresh import reference_summary
    from kfp_rai.training import judge_training
    from kfp_rai.training import train_model as train_fn

    rules = Policy.from_yaml(policy)
    df = read_table(train.path, format="parquet")
    drop: list[str] = []
    if rules.proxies.drop_from_training:
        from kfp_rai.discovery import known_proxies

        sheet = None
        if datasheet is not None:
            with open(datasheet.path, encoding="utf-8") as f:
                sheet = json.load(f)
        ids = set(train.metadata.get("identifier_columns", []))
        candidates = [c for c in df.columns if c != target and c not in sensitive_features and c not in ids]
        found, _ = known_proxies(
            df,
            sensitive_features=sensitive_features,
            features=candidates,
            threshold=rules.proxies.threshold,
            datasheet=sheet,
        )
        drop = list(found)
    fitted, summary = train_fn(
        df,
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        policy=rules.training,
        seed=seed,
        identifier_columns=train.metadata.get("identifier_columns", []),
        drop_proxies=drop,
    )
    verdict = judge_training(summary)
    meta = {
        **asdict(summary),
        "name": model_name or default_model_name(train.metadata.get("source", "")),
        "decision_threshold": rules.validation.threshold,
        "hyperparameters": {
            k: rules.training.to_dict()[k]
            for k in ("max_iter", "learning_rate", "max_leaf_nodes", "mitigation", "mitigation_constraint")
        },
        "training_verdict": verdict.to_dict(),  # the production gate reads it from here
        **lineage(rules.sha256, training_data_sha256=train.metadata.get("sha256", "")),
    }
    ids = train.metadata.get("identifier_columns", [])
    summary_json = json.dumps(reference_summary(df, policy=rules.drift, identifier_columns=ids).to_dict())
    model.metadata.update(save_model_dir(fitted, model.path, meta, {REFERENCE_FILE: summary_json.encode("utf-8")}))
    return namedtuple("GateOutputs", ["status", "passed", "reason"])(*gate_outputs(verdict))
