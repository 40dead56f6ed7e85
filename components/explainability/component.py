"""Explainability component: SHAP attributions of a trained model."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Model, Output

from kfp_rai._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def explain_model(
    model: Input[Model],
    data: Input[Dataset],
    sensitive_features: list[str],
    policy: str,
    seed: int,
    report: Output[Artifact],
    report_html: Output[HTML],
) -> NamedTuple("ExplainOutputs", flagged=bool, reason=str):
    """SHAP attributions on a bounded, seeded sample of ``data``, mapped back to input features.

    TreeExplainer for the tree model (a bounded permutation explainer otherwise); global and
    per-group importance; ``flagged`` when sensitive features carry more attribution than the
    policy allows. Writes a JSON report and an HTML report with a bar chart.
    """
    from collections import namedtuple

    from kfp_rai._artifacts import lineage, load_model_dir, write_report
    from kfp_rai.explainability import explain_model as explain
    from kfp_rai.io import read_table
    from kfp_rai.policy import Policy

    rules = Policy.from_yaml(policy)
    fitted, meta = load_model_dir(model.path, model.metadata.get("sha256"))
    df = read_table(data.path, format="parquet")
    result = explain(
        fitted,
        df,
        features=meta["features"],
        sensitive_features=sensitive_features,
        policy=rules.explainability,
        seed=seed,
    )
    write_report(result, report.path, html_path=report_html.path)
    report.metadata.update(lineage(rules, model_sha256=meta["sha256"]))
    return namedtuple("ExplainOutputs", ["flagged", "reason"])(result.flagged, result.reason)
