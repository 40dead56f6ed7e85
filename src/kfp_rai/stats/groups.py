"""Mergeable per-group counts of a scored data set: confusion cells per group and, per group and
true class, a histogram of scores (for ROC AUC). Every fairness metric we gate on is a function of
these counts, so a data set of any size, or the merge of its partitions, gives the same numbers.

ROC AUC from a score histogram counts a positive and a negative in the same bin as half a correct
ordering; the error against the exact AUC is at most half the share of such pairs, which
:func:`roc_auc` returns beside it (with 10,000 bins it is below 1e-4 on the benchmark data).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kfp_rai.errors import DataValidationError
from kfp_rai.stats.bootstrap import cell_counts

SCORE_BINS = 10_000


@dataclass(frozen=True)
class GroupCounts:
    """One attribute's (or intersection's) groups, their confusion cells (TN, FP, FN, TP) and
    optionally their score histograms, shape (groups, 2 classes, SCORE_BINS)."""

    attribute: str
    labels: tuple[str, ...]
    cells: np.ndarray
    scores: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        attribute: str,
        groups: np.ndarray,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        scores: np.ndarray | None = None,
    ) -> GroupCounts:
        """Counts of rows: ``groups`` (a label per row), 0/1 truth and prediction, scores in [0, 1]."""
        labels, codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
        return cls.from_codes(attribute, codes, [str(v) for v in labels], y_true, y_pred, scores)

    @classmethod
    def from_codes(
        cls,
        attribute: str,
        codes: np.ndarray,
        labels: Sequence[str],
        y_true: np.ndarray,
        y_pred: np.ndarray,
        scores: np.ndarray | None = None,
    ) -> GroupCounts:
        """As :meth:`of`, with groups given as integer codes into ``labels`` (one ``bincount``);
        groups without rows are left out, and labels are put in sorted order."""
        codes = np.asarray(codes, dtype=np.int64)
        y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
        cells = cell_counts(codes, y_true, y_pred, len(labels))
        hist = None
        if scores is not None:
            s = np.asarray(scores, dtype=float)
            if np.isnan(s).any() or (s < 0).any() or (s > 1).any():
                raise DataValidationError("scores must be probabilities in [0, 1], without missing values")
            b = np.minimum((s * SCORE_BINS).astype(np.int64), SCORE_BINS - 1)
            flat = (codes * 2 + y_true) * SCORE_BINS + b
            hist = np.bincount(flat, minlength=len(labels) * 2 * SCORE_BINS).reshape(len(labels), 2, SCORE_BINS)
        present = [i for i in sorted(range(len(labels)), key=lambda i: str(labels[i])) if cells[i].sum() > 0]
        return cls(
            attribute,
            tuple(str(labels[i]) for i in present),
            cells[present],
            None if hist is None else hist[present],
        )

    def merge(self, other: GroupCounts) -> GroupCounts:
        """Exact: counts of the union, groups aligned by label."""
        if other.attribute != self.attribute:
            raise DataValidationError(f"cannot merge counts of {self.attribute!r} with {other.attribute!r}")
        if (self.scores is None) != (other.scores is None):
            raise DataValidationError(f"cannot merge counts of {self.attribute!r} with and without scores")
        labels = tuple(sorted(set(self.labels) | set(other.labels)))
        at = {label: i for i, label in enumerate(labels)}
        cells = np.zeros((len(labels), 4), dtype=np.int64)
        scores = None if self.scores is None else np.zeros((len(labels), 2, SCORE_BINS), dtype=np.int64)
        for part in (self, other):
            rows = [at[label] for label in part.labels]
            cells[rows] += part.cells
            if scores is not None and part.scores is not None:
                scores[rows] += part.scores
        return GroupCounts(self.attribute, labels, cells, scores)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"attribute": self.attribute, "labels": list(self.labels), "cells": self.cells.tolist()}
        if self.scores is not None:  # sparse: most of the 10,000 bins are empty in small groups
            g, c, b = np.nonzero(self.scores)
            d["scores"] = [g.tolist(), c.tolist(), b.tolist(), self.scores[g, c, b].tolist()]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GroupCounts:
        try:
            labels = tuple(str(v) for v in d["labels"])
            cells = np.asarray(d["cells"], dtype=np.int64).reshape(len(labels), 4)
            scores = None
            if d.get("scores") is not None:
                g, c, b, n = (np.asarray(v, dtype=np.int64) for v in d["scores"])
                scores = np.zeros((len(labels), 2, SCORE_BINS), dtype=np.int64)
                scores[g, c, b] = n
            return cls(str(d["attribute"]), labels, cells, scores)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DataValidationError(f"damaged group counts: {exc}") from exc


def roc_auc(hist: np.ndarray) -> tuple[float, float]:
    """(ROC AUC, its largest possible error) from a (2, bins) histogram of negatives and positives;
    NaN when a class is empty."""
    neg, pos = hist[0].astype(float), hist[1].astype(float)
    n_neg, n_pos = neg.sum(), pos.sum()
    if n_neg == 0 or n_pos == 0:
        return float("nan"), float("nan")
    below = np.cumsum(neg) - neg  # negatives in lower bins
    ties = float((pos * neg).sum())
    auc = float(((pos * below).sum() + 0.5 * ties) / (n_neg * n_pos))
    return auc, 0.5 * ties / (n_neg * n_pos)


def merge_counts(parts: Sequence[GroupCounts]) -> GroupCounts:
    if not parts:
        raise DataValidationError("nothing to merge: no group counts were given")
    out = parts[0]
    for more in parts[1:]:
        out = out.merge(more)
    return out
