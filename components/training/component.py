"""Training component."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

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
):
    """Train one-hot encoding + HistGradientBoostingClassifier on ``train``, seeded.

    Sensitive features are not model inputs unless the policy's ``training.use_sensitive_features``
    says so; identifier columns (``identifier_columns`` in the data's metadata, set when they were
    pseudonymized at load) never are. The model is saved with skops (never pickle) as ``model.skops`` in the artifact
    directory, beside ``metadata.json``; the metadata holds ``sha256``, ``framework``, ``features``,
    ``training_data_sha256``, ``policy_sha256`` and ``kfp_rai_version``.
    """
    from dataclasses import asdict

    from kfp_rai._artifacts import lineage, save_model_dir
    from kfp_rai.io import read_table
    from kfp_rai.policy import Policy
    from kfp_rai.training import train_model as train_fn

    rules = Policy.from_yaml(policy)
    df = read_table(train.path, format="parquet")
    fitted, summary = train_fn(
        df,
        target=target,
        positive_label=positive_label,
        sensitive_features=sensitive_features,
        policy=rules.training,
        seed=seed,
        identifier_columns=train.metadata.get("identifier_columns", []),
    )
    meta = {
        **asdict(summary),
        "decision_threshold": rules.validation.threshold,
        **lineage(rules, training_data_sha256=train.metadata.get("sha256", "")),
    }
    model.metadata.update(save_model_dir(fitted, model.path, meta))
