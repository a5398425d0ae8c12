"""What the scheduler measures, in Prometheus form (served at `/metrics`).

Each process has its own registry: the API's `/metrics` shows the scheduler's figures when
they run in one process (`crier run`); a standalone `crier worker` serves its own on
`CRIER_WORKER_METRICS_PORT`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PUBLISH_LATENESS = Histogram(
    "crier_publish_lateness_seconds",
    "Seconds between a post's publish_at and the start of its first send, per delivery.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
DELIVERY_ATTEMPTS = Counter(
    "crier_delivery_attempts_total",
    "Delivery attempts by outcome (published, retrying, failed) and error code.",
    ["outcome", "error_code"],
)
QUEUE_DEPTH = Gauge(
    "crier_queue_depth",
    "Posts due within the lock horizon or in flight, across workspaces, at the last round.",
)
LEASES_HELD = Gauge("crier_leases_held", "Posts this process's worker holds on a lease.")
