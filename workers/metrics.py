"""The counters only the tasks themselves can move (Prometheus, prometheus_client): what each
sweep sent again and how many webhook POSTs failed. Under ``cityrelay up`` or with
``cityrelay worker --metrics-port`` every pool process writes them to the shared
``PROMETHEUS_MULTIPROC_DIR``; ``cityrelay.observability`` serves them with the rest."""

from __future__ import annotations

from prometheus_client import Counter

SWEEP_RUNS = Counter(
    "cityrelay_sweep_runs",
    "Runs of the sweep that enqueues again the reports stuck before routing.",
)
SWEEP_REQUEUED = Counter(
    "cityrelay_sweep_requeued_reports",
    "Reports the sweep enqueued again, summed over its runs.",
)
WEBHOOK_FAILURES = Counter(
    "cityrelay_webhook_failures",
    "Webhook POSTs that failed (no answer, a non-2xx answer, or a host no longer allowed).",
)
