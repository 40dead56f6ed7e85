"""SHAP attributions of a fitted model, summed back from one-hot columns to original features."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kfp_rai.core.groups import group_labels
from kfp_rai.core.report import Figure, Report, Section, Table, findings_section
from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import ExplainabilityPolicy

logger = logging.getLogger(__name__)

_PERMUTATION_BACKGROUND = 100
_TOP_BY_GROUP = 8


@dataclass(frozen=True)
class FeatureImportance:
    feature: str
    mean_abs_shap: float
    share: float


@dataclass(frozen=True)
class ExplanationReport(Report):
    """Global and per-group importance, and how much the model leans on sensitive features."""

    kind = "explanation_report"
    title = "Model explanation"

    verdict: Verdict
    method: str
    rows_explained: int
    importance: tuple[FeatureImportance, ...]
    by_group: dict[str, dict[str, dict[str, float]]]
    sensitive_share: float
    sensitive_features_used: tuple[str, ...]
    proxies: dict[str, list[str]]
    proxy_share: float
    proxy_source: str
    policy: dict[str, Any]

    def _chart(self) -> Figure:
        from kfp_rai.core.charts import bar_chart

        top = self.importance[:15]
        caption = "Mean absolute SHAP value per input feature (log-odds), the 15 largest."
        return Figure(
            bar_chart(
                [f.feature for f in top],
                [f.mean_abs_shap for f in top],
                title="Global feature importance",
                xlabel="mean |SHAP value| (log-odds)",
                alt=caption,
            ),
            caption,
        )

    def sections(self) -> list[Section]:
        used = ", ".join(self.sensitive_features_used) or "none"
        sections = [
            Section(
                "Method",
                (
                    f"{self.method} on a seeded sample of {self.rows_explained} rows. Attributions of one-hot "
                    "columns are summed back to the feature they encode.",
                    f"Sensitive features used as model inputs: {used}; their share of total attribution: "
                    f"{self.sensitive_share:.3f} (the policy allows at most {self.policy['max_sensitive_share']}). "
                    f"Enforced: {'yes' if self.policy['enforce'] else 'no (violations recorded as warnings)'}.",
                    f"Proxies (features that stand in for a sensitive attribute; from {self.proxy_source}): "
                    + (", ".join(f"{f} (of {', '.join(a)})" for f, a in self.proxies.items()) or "none")
                    + f". Sensitive features and proxies together carry {self.proxy_share:.3f} of attribution "
                    f"(the policy allows at most {self.policy['max_proxy_share']}).",
                ),
            ),
            findings_section(self.verdict),
            Section(
                "Global importance",
                (
                    self._chart(),
                    Table(
                        ("feature", "mean |SHAP|", "share", "stands for"),
                        tuple(
                            (
                                f.feature,
                                f.mean_abs_shap,
                                f.share,
                                "sensitive"
                                if f.feature in self.sensitive_features_used
                                else ", ".join(self.proxies.get(f.feature, [])),
                            )
                            for f in self.importance
                        ),
                    ),
                ),
            ),
        ]
        top = [f.feature for f in self.importance[:_TOP_BY_GROUP]]
        for attr, groups in self.by_group.items():
            sections.append(
                Section(
                    f"Importance by {attr} (mean |SHAP| of the {len(top)} most important features)",
                    (Table(("group", *top), tuple((g, *(vals.get(f) for f in top)) for g, vals in groups.items())),),
                )
            )
        return sections


def _original_feature(name: str, features: Sequence[str]) -> str:
    """Map a ColumnTransformer output column (``cat__sex_Female``) to its input feature."""
    _, _, rest = name.partition("__")
    if rest in features:
        return rest
    candidates = [f for f in features if rest.startswith(f + "_")]
    if not candidates:
        raise DataValidationError(f"cannot map model column {name!r} back to an input feature")
    return max(candidates, key=len)


def tree_explainer(model: Any) -> Any:
    """A SHAP TreeExplainer for the last step of a preprocessing + tree ensemble pipeline."""
    import shap

    return shap.TreeExplainer(model[-1])


def _tree_attributions(model: Any, X: pd.DataFrame, explainer: Any = None) -> tuple[np.ndarray, list[str]]:
    transformed = model[:-1].transform(X)
    columns = list(model[:-1].get_feature_names_out())
    values = np.asarray((explainer or tree_explainer(model)).shap_values(transformed))
    if values.ndim == 3:  # (rows, columns, classes) for some model types: keep the positive class
        values = values[..., -1]
    return values, columns


def top_contributions(
    explainer: Any, model: Any, X: pd.DataFrame, features: Sequence[str], *, top: int = 3
) -> list[list[dict[str, Any]]]:
    """Reason codes: per row, the ``top`` input features with the largest SHAP values (log-odds,
    one-hot columns summed back to their feature), largest first, each with its direction."""
    values, columns = _tree_attributions(model, X, explainer)
    per_feature = (
        pd.DataFrame(values, columns=columns)
        .T.groupby([_original_feature(c, features) for c in columns], sort=False)
        .sum()
        .T
    )
    codes = []
    for _, row in per_feature.iterrows():
        strongest = row.abs().sort_values(ascending=False).index[:top]
        codes.append(
            [
                {
                    "feature": str(f),
                    "contribution": round(float(row[f]), 4),
                    "direction": "raises" if row[f] > 0 else "lowers",
                }
                for f in strongest
            ]
        )
    return codes


def _permutation_attributions(model: Any, X: pd.DataFrame, seed: int) -> tuple[np.ndarray, list[str]]:
    """Model-agnostic fallback on the raw features, bounded in evaluations.

    shap's maskers need numbers, so text columns travel as integer codes and are decoded before
    the model sees them.
    """
    import shap

    categorical = list(X.select_dtypes(exclude="number").columns)
    uniques = {c: pd.factorize(X[c], use_na_sentinel=False)[1] for c in categorical}
    encoded = X.copy()
    for c in categorical:
        encoded[c] = pd.Index(uniques[c]).get_indexer(X[c]).astype(float)
    encoded = encoded.astype(float)

    def predict(data: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(data, columns=X.columns)
        for c in categorical:
            frame[c] = np.asarray(uniques[c], dtype=object)[frame[c].round().astype(int).to_numpy()]
        return np.asarray(model.predict_proba(frame.astype({c: X[c].dtype for c in X.columns}))[:, 1])

    background = encoded.sample(min(len(encoded), _PERMUTATION_BACKGROUND), random_state=seed).to_numpy()
    explainer = shap.explainers.Permutation(predict, shap.maskers.Independent(background), seed=seed)
    result = explainer(encoded.to_numpy(), max_evals=2 * X.shape[1] + 1, silent=True)
    return np.asarray(result.values), [f"remainder__{c}" for c in X.columns]


def explain_model(
    model: Any,
    df: pd.DataFrame,
    *,
    features: Sequence[str],
    sensitive_features: Sequence[str] = (),
    policy: ExplainabilityPolicy | None = None,
    seed: int = 0,
    proxies: Mapping[str, Sequence[str]] | None = None,
    proxy_source: str = "not measured",
) -> ExplanationReport:
    """SHAP attributions of ``model`` on a bounded sample of ``df``.

    TreeExplainer for tree ensembles behind a preprocessing pipeline; a bounded permutation
    explainer for anything else. Two findings: the sensitive features' share of attribution
    (``max_sensitive_share``) and the share of the sensitive features and their ``proxies``
    together (``max_proxy_share``; feature -> the attributes it stands for).

    Returns
    -------
    ExplanationReport
    """
    policy = policy or ExplainabilityPolicy()
    missing = [c for c in [*features, *sensitive_features] if c not in df.columns]
    if missing:
        raise DataValidationError(f"the data lacks columns needed to explain the model: {missing}")
    if df.empty:
        raise DataValidationError("cannot explain a model on an empty data set")
    sample = df.sample(min(len(df), policy.sample_size), random_state=seed)
    X = sample[list(features)]
    try:
        values, columns = _tree_attributions(model, X)
        method = "SHAP TreeExplainer (tree-path-dependent, exact for trees)"
    except Exception as exc:  # noqa: BLE001 - any unsupported model falls back, with the reason logged
        logger.info("TreeExplainer not usable (%s); falling back to the permutation explainer", exc)
        values, columns = _permutation_attributions(model, X, seed)
        method = "SHAP permutation explainer (model-agnostic, bounded evaluations)"
    per_feature = (
        pd.DataFrame(values, columns=columns)
        .T.groupby([_original_feature(c, features) for c in columns], sort=False)
        .sum()
        .T
    )
    mean_abs = per_feature.abs().mean().sort_values(ascending=False)
    total = float(mean_abs.sum()) or 1.0
    importance = tuple(
        FeatureImportance(feature=str(f), mean_abs_shap=float(v), share=float(v) / total) for f, v in mean_abs.items()
    )
    by_group: dict[str, dict[str, dict[str, float]]] = {}
    for attr in sensitive_features:
        groups = group_labels(sample[attr]).to_numpy()
        frame = per_feature.abs().set_axis(groups, axis=0)
        by_group[attr] = {
            str(g): {str(k): float(v) for k, v in row.items()} for g, row in frame.groupby(level=0).mean().iterrows()
        }
    used = tuple(f for f in sensitive_features if f in features)
    sensitive_share = float(sum(mean_abs.get(f, 0.0) for f in used)) / total
    measured = proxies is not None
    leaning_on = {str(f): list(a) for f, a in (proxies or {}).items() if f in features and f not in used}
    leaning = [*used, *leaning_on]
    proxy_share = float(sum(mean_abs.get(f, 0.0) for f in leaning)) / total
    top = ", ".join(f"{f.feature} ({f.share:.0%})" for f in importance[:3])
    within = sensitive_share <= policy.max_sensitive_share
    proxy_within = proxy_share <= policy.max_proxy_share
    parts = ", ".join(
        f"{f} {float(mean_abs.get(f, 0.0)) / total:.0%}" for f in sorted(leaning, key=lambda f: -mean_abs.get(f, 0.0))
    )
    proxy_finding = Finding(
        "explainability.max_proxy_share",
        "sensitive features and their proxies",
        (GateStatus.PASSED if proxy_within else GateStatus.FAILED) if measured else GateStatus.NOT_JUDGED,
        (
            f"sensitive features and their proxies ({parts or 'none among the inputs'}) carry {proxy_share:.1%} of "
            "attribution" + ("" if proxy_within else f" (> {policy.max_proxy_share:.0%} allowed)")
        )
        if measured
        else "proxies of the sensitive features were not measured, so reliance on them cannot be judged "
        "(pass proxies: kfp_rai.discovery.known_proxies)",
        observed=proxy_share if measured else None,
        limit=policy.max_proxy_share,
    )
    finding = Finding(
        "explainability.max_sensitive_share",
        "sensitive features",
        GateStatus.PASSED if within else GateStatus.FAILED,
        f"sensitive features ({', '.join(used) or 'none used as inputs'}) carry {sensitive_share:.1%} of attribution"
        + ("" if within else f" (> {policy.max_sensitive_share:.0%} allowed)"),
        observed=sensitive_share,
        limit=policy.max_sensitive_share,
    )
    verdict = Verdict.judge(
        [finding, proxy_finding],
        summary=f"top features: {top}; sensitive features carry {sensitive_share:.1%} of attribution, with their "
        f"proxies {proxy_share:.1%}",
        enforce=policy.enforce,
    )
    return ExplanationReport(
        verdict=verdict,
        method=method,
        rows_explained=int(len(sample)),
        importance=importance,
        by_group=by_group,
        sensitive_share=sensitive_share,
        sensitive_features_used=used,
        proxies=leaning_on,
        proxy_share=proxy_share,
        proxy_source=proxy_source,
        policy=policy.to_dict(),
    )
