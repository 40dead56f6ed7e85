"""SHAP attributions of a fitted model, summed back from one-hot columns to original features."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kfp_rai.core.groups import group_labels, intersection_labels, intersection_name
from kfp_rai.core.report import Figure, Report, Section, Table, findings_section
from kfp_rai.core.verdict import Finding, GateStatus, Verdict
from kfp_rai.errors import DataValidationError
from kfp_rai.policy import ExplainabilityPolicy

logger = logging.getLogger(__name__)

_PERMUTATION_BACKGROUND = 100
_TOP_BY_GROUP = 8
_TOP_CHART = 15
# The shares' intervals: percentiles of resamples of the explained rows (the uncertainty of explaining
# a sample instead of every row, not of the model).
_BOOTSTRAP_SAMPLES = 200
_CONFIDENCE = 0.95


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
    # attribute -> group -> rows of it explained (every group of the data, however few were sampled)
    by_group_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    sensitive_share_interval: tuple[float, float] | None = None
    proxy_share_interval: tuple[float, float] | None = None
    # how the explained rows were drawn and weighted (strata, their sizes in the data and the sample)
    sampling: dict[str, Any] = field(default_factory=dict)

    def role(self, feature: str) -> str | None:
        """``sensitive``, ``proxy`` (stands in for a sensitive attribute) or None."""
        if feature in self.sensitive_features_used:
            return "sensitive"
        return "proxy" if feature in self.proxies else None

    def _interval_note(self) -> str:
        s = self.sampling
        return (
            f"{s.get('confidence_level', _CONFIDENCE):.0%} interval: percentiles of {s.get('bootstrap_samples')} "
            f"bootstrap resamples of the {self.rows_explained} explained rows (within each stratum, seed "
            f"{s.get('seed')}); it measures the uncertainty of explaining a sample, not the model's"
        )

    def _chart(self) -> Figure:
        from kfp_rai.core.charts import bar_chart

        top = self.importance[:_TOP_CHART]
        which = (
            f"all {len(top)} features"
            if len(top) == len(self.importance)
            else f"the {len(top)} largest of {len(self.importance)} features (every one in the table below)"
        )
        marked = [r for r in ("sensitive", "proxy") if any(self.role(f.feature) == r for f in top)]
        caption = (
            f"Mean absolute SHAP value per input feature (log-odds), {which}, weighted back to the population "
            f"({self.sampling.get('weighting', 'unweighted')}). "
            + (
                f"Marked by colour (legend): {' and '.join(marked)} features. "
                if marked
                else "No sensitive feature or proxy is among them. "
            )
            + f"Sensitive features and proxies together carry {self.proxy_share:.1%} of attribution"
            + (
                f" ({self._interval_note()}: {self.proxy_share_interval[0]:.1%}–{self.proxy_share_interval[1]:.1%})."
                if self.proxy_share_interval
                else "."
            )
        )
        return Figure(
            bar_chart(
                [f.feature for f in top],
                [f.mean_abs_shap for f in top],
                title="Global feature importance",
                xlabel="mean |SHAP value| (log-odds)",
                alt=caption,
                roles=[self.role(f.feature) for f in top],
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
                    self._sampling_note(),
                    f"Sensitive features used as model inputs: {used}; their share of total attribution: "
                    f"{self.sensitive_share:.3f}{self._interval(self.sensitive_share_interval)} (the policy allows "
                    f"at most {self.policy['max_sensitive_share']}). "
                    f"Enforced: {'yes' if self.policy['enforce'] else 'no (violations recorded as warnings)'}.",
                    f"Proxies (features that stand in for a sensitive attribute; from {self.proxy_source}): "
                    + (", ".join(f"{f} (of {', '.join(a)})" for f, a in self.proxies.items()) or "none")
                    + f". Sensitive features and proxies together carry {self.proxy_share:.3f}"
                    f"{self._interval(self.proxy_share_interval)} of attribution "
                    f"(the policy allows at most {self.policy['max_proxy_share']}; judged on the measured share)."
                    + (f" Intervals: {self._interval_note()}." if self.proxy_share_interval else ""),
                ),
            ),
            findings_section(self.verdict),
            Section(
                "Global importance",
                (
                    self._chart(),
                    Table(
                        ("feature", "role", "mean |SHAP|", "share", "stands for"),
                        tuple(
                            (
                                f.feature,
                                self.role(f.feature) or "—",
                                f.mean_abs_shap,
                                f.share,
                                "itself"
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
        least = self.policy.get("min_group_rows", 0)
        for attr, groups in self.by_group.items():
            sampled = self.by_group_rows[attr]
            rows: list[tuple[Any, ...]] = []
            for g, n in sampled.items():
                values = groups.get(g)
                if values is None or n < least:
                    rows.append((g, n, f"too few rows sampled ({n} < {least})", *([None] * (len(top) - 1))))
                else:
                    rows.append((g, n, *(values.get(f) for f in top)))
            sections.append(
                Section(
                    f"Importance by {attr} (mean |SHAP| of the {len(top)} most important features)",
                    (
                        f"Each group's mean |SHAP| over its explained rows (weighted like the global importance), "
                        f"shown for a group with at least {least} rows explained (policy: "
                        "explainability.min_group_rows).",
                        Table(("group", "rows explained", *top), tuple(rows)),
                    ),
                )
            )
        return sections

    @staticmethod
    def _interval(bounds: tuple[float, float] | None) -> str:
        return f" ({bounds[0]:.3f}–{bounds[1]:.3f})" if bounds else ""

    def _sampling_note(self) -> str:
        s = self.sampling
        if not s.get("strata"):
            return f"A simple random sample of {self.rows_explained} of {s.get('population_rows')} rows (seed " \
                f"{s.get('seed')}), every row weighted alike."  # fmt: skip
        raised = s.get("raised", [])
        return (
            f"Stratified by {s['strata']}: each of its {len(s.get('strata_rows', {}))} groups gets its share of "
            f"{self.policy['sample_size']} rows, raised to {s['min_group_rows']} where it has them "
            + (f"(raised: {', '.join(raised)})" if raised else "(none needed raising)")
            + f"; {self.rows_explained} of {s.get('population_rows')} rows explained (seed {s.get('seed')}). "
            "Small groups are over-sampled, so every figure on this page weights each explained row by its "
            "stratum's rows in the data over its rows explained: importance is the population's, not the "
            "sample's."
        )


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


def _permutation_attributions(
    model: Any, X: pd.DataFrame, seed: int, weights: np.ndarray | None = None
) -> tuple[np.ndarray, list[str]]:
    """Model-agnostic fallback on the raw features, bounded in evaluations.

    shap's maskers need numbers, so text columns travel as integer codes and are decoded before
    the model sees them. The background (what a feature is replaced with) is drawn from ``X`` with
    the rows' ``weights``, so a stratified sample's over-drawn small groups do not tilt it.
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

    background = encoded.sample(
        min(len(encoded), _PERMUTATION_BACKGROUND), weights=weights, random_state=seed
    ).to_numpy()
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
    sample, weights, strata, sampling = _stratified_sample(
        df, sensitive_features, size=policy.sample_size, min_rows=policy.min_group_rows, seed=seed
    )
    X = sample[list(features)]
    try:
        values, columns = _tree_attributions(model, X)
        method = "SHAP TreeExplainer (tree-path-dependent, exact for trees)"
    except Exception as exc:  # noqa: BLE001 - any unsupported model falls back, with the reason logged
        logger.info("TreeExplainer not usable (%s); falling back to the permutation explainer", exc)
        values, columns = _permutation_attributions(model, X, seed, weights)
        method = "SHAP permutation explainer (model-agnostic, bounded evaluations)"
    per_feature = (
        pd.DataFrame(values, columns=columns)
        .T.groupby([_original_feature(c, features) for c in columns], sort=False)
        .sum()
        .T
    )
    absolute = per_feature.abs()
    # Weighted means: each explained row stands for its stratum's rows in the data (see _stratified_sample).
    mean_abs = (absolute.mul(weights, axis=0).sum() / weights.sum()).sort_values(ascending=False)
    total = float(mean_abs.sum()) or 1.0
    importance = tuple(
        FeatureImportance(feature=str(f), mean_abs_shap=float(v), share=float(v) / total) for f, v in mean_abs.items()
    )
    by_group: dict[str, dict[str, dict[str, float]]] = {}
    by_group_rows: dict[str, dict[str, int]] = {}
    for attr in sensitive_features:
        groups = group_labels(sample[attr]).to_numpy()
        by_group_rows[attr] = {
            str(g): int((groups == g).sum()) for g in sorted(group_labels(df[attr]).unique(), key=str)
        }
        by_group[attr] = {}
        for g in by_group_rows[attr]:
            rows = groups == g
            if by_group_rows[attr][g] >= policy.min_group_rows:  # fewer: too few rows to say anything
                w = weights[rows]
                by_group[attr][g] = {
                    str(k): float(v) for k, v in (absolute[rows].mul(w, axis=0).sum() / w.sum()).items()
                }
    used = tuple(f for f in sensitive_features if f in features)
    sensitive_share = float(sum(mean_abs.get(f, 0.0) for f in used)) / total
    measured = proxies is not None
    leaning_on = {str(f): list(a) for f, a in (proxies or {}).items() if f in features and f not in used}
    leaning = [*used, *leaning_on]
    proxy_share = float(sum(mean_abs.get(f, 0.0) for f in leaning)) / total
    sensitive_interval, proxy_interval = (
        _share_interval(absolute, weights, strata, part, seed=seed) for part in (used, leaning)
    )
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
        interval=proxy_interval if measured else None,
    )
    finding = Finding(
        "explainability.max_sensitive_share",
        "sensitive features",
        GateStatus.PASSED if within else GateStatus.FAILED,
        f"sensitive features ({', '.join(used) or 'none used as inputs'}) carry {sensitive_share:.1%} of attribution"
        + ("" if within else f" (> {policy.max_sensitive_share:.0%} allowed)"),
        observed=sensitive_share,
        limit=policy.max_sensitive_share,
        interval=sensitive_interval,
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
        by_group_rows=by_group_rows,
        sensitive_share_interval=sensitive_interval,
        proxy_share_interval=proxy_interval if measured else None,
        sampling={**sampling, "bootstrap_samples": _BOOTSTRAP_SAMPLES, "confidence_level": _CONFIDENCE},
    )


def _stratified_sample(
    df: pd.DataFrame, sensitive_features: Sequence[str], *, size: int, min_rows: int, seed: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict[str, Any]]:
    """A seeded sample stratified by the sensitive attributes' intersection, with each row's weight.

    Each stratum (e.g. ``Female × Black``) gets its proportional share of ``size`` rows (largest
    remainders), raised where a group of an attribute would get fewer than ``min_rows`` rows
    (:func:`_raise_groups`): every group of every attribute then has at least ``min_rows`` rows
    explained, or all it has. A row's weight is its
    stratum's rows in the data over its rows in the sample, so weighted means are the population's
    (the small strata's over-sampling does not tilt them). Without sensitive features: a simple
    random sample, weights alike. Returns the sample, the weights, each row's stratum and a summary.
    """
    rng = np.random.default_rng(seed)
    n = len(df)
    if not sensitive_features:
        picked = np.sort(rng.choice(n, size=min(n, size), replace=False))
        weights = np.full(len(picked), n / max(len(picked), 1))
        return df.iloc[picked], weights, np.zeros(len(picked), dtype=np.int64), {
            "strata": None, "population_rows": n, "seed": seed, "min_group_rows": min_rows, "weighting": "unweighted"
        }  # fmt: skip
    labels = (
        intersection_labels(df, sensitive_features)
        if len(sensitive_features) > 1
        else group_labels(df[sensitive_features[0]])
    ).to_numpy()
    names, codes, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    quota = np.minimum(sizes, size * sizes / n)
    take = np.floor(quota).astype(np.int64)
    short = min(size, n) - int(take.sum())
    if short > 0:  # largest remainders first, never more than a stratum holds
        for i in np.argsort(-(quota - take), kind="stable"):
            if short == 0:
                break
            if take[i] < sizes[i]:
                take[i] += 1
                short -= 1
    raised = _raise_groups(df, sensitive_features, codes, sizes, take, min_rows)
    picked_parts, weight_parts = [], []
    for i in range(len(names)):
        rows = np.flatnonzero(codes == i)
        chosen = rng.choice(rows, size=int(raised[i]), replace=False)
        picked_parts.append(chosen)
        weight_parts.append(np.full(len(chosen), sizes[i] / raised[i]))
    picked = np.concatenate(picked_parts)
    weights = np.concatenate(weight_parts)
    order = np.argsort(picked, kind="stable")  # the data's row order, whatever the strata's
    summary = {
        "strata": intersection_name(sensitive_features),
        "population_rows": n,
        "seed": seed,
        "min_group_rows": min_rows,
        "strata_rows": {str(names[i]): int(sizes[i]) for i in range(len(names))},
        "strata_sampled": {str(names[i]): int(raised[i]) for i in range(len(names))},
        "raised": [str(names[i]) for i in range(len(names)) if raised[i] > take[i]],
        "weighting": "each explained row weighted by its stratum's rows in the data over its rows explained",
    }
    return df.iloc[picked[order]], weights[order], codes[picked[order]], summary


def _raise_groups(
    df: pd.DataFrame,
    sensitive_features: Sequence[str],
    codes: np.ndarray,
    sizes: np.ndarray,
    take: np.ndarray,
    min_rows: int,
) -> np.ndarray:
    """Rows to draw per stratum: ``take`` (the proportional shares), raised until every group of every
    attribute has ``min_rows`` rows drawn (or all it has), the extra spread over the group's strata in
    proportion to the rows they have left, and every stratum drawn from at least once. Raising groups,
    not every stratum, bounds the sample by ``sample_size`` + the strata + the attributes' groups ×
    ``min_rows``."""
    raised = np.maximum(take, 1)  # every stratum drawn from: its rows' weight has someone to carry it
    first = np.unique(codes, return_index=True)[1]  # a row of each stratum: its group in each attribute
    for attribute in sensitive_features:
        of_stratum = group_labels(df[attribute]).to_numpy()[first]
        for group in np.unique(of_stratum):
            strata = np.flatnonzero(of_stratum == group)
            need = min(min_rows, int(sizes[strata].sum())) - int(raised[strata].sum())
            while need > 0:  # a few rounds at most: each gives every stratum with room its share
                room = sizes[strata] - raised[strata]
                share = np.minimum(room, np.ceil(need * room / max(int(room.sum()), 1)).astype(np.int64))
                for i, extra in zip(strata, share, strict=True):
                    extra = min(int(extra), need)
                    raised[i] += extra
                    need -= extra
    return np.asarray(raised, dtype=np.int64)


def _share_interval(
    absolute: pd.DataFrame, weights: np.ndarray, strata: np.ndarray, part: Sequence[str], *, seed: int
) -> tuple[float, float] | None:
    """Percentile interval of ``part``'s share of the weighted attribution, over resamples of the
    explained rows drawn within each stratum (as they were sampled); None with no row or no part."""
    if not part or len(absolute) == 0:
        return None
    rng = np.random.default_rng([seed, 1 << 20])
    whole = absolute.to_numpy().sum(axis=1) * weights
    share = absolute[[f for f in part if f in absolute.columns]].to_numpy().sum(axis=1) * weights
    drawn = np.zeros((_BOOTSTRAP_SAMPLES, len(weights)))
    for stratum in np.unique(strata):
        rows = np.flatnonzero(strata == stratum)
        picks = rng.integers(0, len(rows), size=(_BOOTSTRAP_SAMPLES, len(rows)))
        np.add.at(drawn, (np.arange(_BOOTSTRAP_SAMPLES)[:, None], rows[picks]), 1)
    totals = drawn @ whole
    shares = np.divide(drawn @ share, totals, out=np.zeros(_BOOTSTRAP_SAMPLES), where=totals > 0)
    tail = (1 - _CONFIDENCE) / 2 * 100
    low, high = np.percentile(shares, [tail, 100 - tail])
    return float(low), float(high)
