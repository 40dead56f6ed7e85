"""kfp-rai's own Prometheus counters, beside KServe's (all served at ``/metrics``), labelled by
model name and version."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LABELS = ("model", "version")

PREDICTIONS = Counter("kfp_rai_predictions", "Instances scored", _LABELS)
REJECTED = Counter(
    "kfp_rai_rejections",
    "Requests refused before scoring: schema (a bad instance), malformed (unreadable, too large, too slow), "
    "unauthorized (no or wrong token)",
    (*_LABELS, "reason"),
)
REFUSED = Counter("kfp_rai_refused_disabled", "Requests refused while the kill switch was on", _LABELS)
INPUT_ALERTS = Counter(
    "kfp_rai_input_alerts",
    "Unusual inputs: out_of_range, unseen_category (per feature and instance)",
    (*_LABELS, "kind"),
)
RATE_ALERTS = Counter("kfp_rai_rate_alerts", "Times the positive-prediction rate left its expected interval", _LABELS)
DISABLED = Gauge("kfp_rai_disabled", "1 while the kill switch is on", _LABELS)
BATCH = Histogram(
    "kfp_rai_batch_requests",
    "Requests judged and scored together in one model call (dynamic batching)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
