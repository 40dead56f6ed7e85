"""Bootstrap confidence intervals of per-group fairness metrics: fairlearn vs kfp-rai, side by side.

fairlearn's ``MetricFrame(n_boot=...)`` is what a user would otherwise call. kfp-rai resamples
per-group confusion counts instead (kfp_rai.validation._bootstrap). Same data, same metrics
(selection rate, TPR, FPR, accuracy by sex), same number of resamples; wall time of each and the
ratio. Run: ``python benchmarks/bench_bootstrap.py [n_boot ...]``.
"""

import sys
import time

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import accuracy_score

from kfp_rai.discovery import split_dataset
from kfp_rai.io import read_table
from kfp_rai.training import labels, train_model
from kfp_rai.validation._bootstrap import bootstrap_cell_counts, interval, rates

METRICS = {
    "accuracy": accuracy_score,
    "selection_rate": selection_rate,
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
}


def main(n_boots: list[int]) -> None:
    train, test = split_dataset(read_table("bundled:adult"), target="income", test_size=0.3, seed=0)
    model, summary = train_model(train, target="income", positive_label=">50K", sensitive_features=["sex", "race"])
    y = labels(test, target="income", positive_label=">50K")
    y_pred = model.predict(test[list(summary.features)])
    sex = test["sex"]
    print(f"{len(test)} test rows, groups of sex: {sorted(sex.unique())}")
    header = f"{'n_boot':>7} {'fairlearn s':>12} {'kfp-rai s':>10} {'speed-up':>9}"
    print(header + "  selection-rate CI Female (fairlearn | ours)")
    for n_boot in n_boots:
        start = time.perf_counter()
        mf = MetricFrame(
            metrics=METRICS,
            y_true=y,
            y_pred=y_pred,
            sensitive_features=sex,
            n_boot=n_boot,
            ci_quantiles=[0.025, 0.975],
            random_state=0,
        )
        theirs = (mf.by_group_ci[0]["selection_rate"]["Female"], mf.by_group_ci[1]["selection_rate"]["Female"])
        t_fairlearn = time.perf_counter() - start

        start = time.perf_counter()
        index = pd.Index(sorted(sex.unique()))
        codes = index.get_indexer(sex)
        boot = rates(bootstrap_cell_counts(codes, y, np.asarray(y_pred), len(index), n_boot=n_boot, seed=0))
        ours = interval(boot["selection_rate"][:, index.get_loc("Female")], 0.95)
        t_ours = time.perf_counter() - start
        print(
            f"{n_boot:>7} {t_fairlearn:>12.3f} {t_ours:>10.4f} {t_fairlearn / t_ours:>8.0f}x  "
            f"{theirs[0]:.4f}-{theirs[1]:.4f} | {ours[0]:.4f}-{ours[1]:.4f}"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [50, 200])
