"""Ferry's Prometheus metrics: one ``Metrics`` object, built at start-up and passed to whoever counts.

Each ``Metrics`` owns its own ``CollectorRegistry`` rather than the process-global one, so two apps (or two
tests) in one process never share or collide on counters. ``GET /metrics`` serves ``Metrics.render()``.

Label values must come from a small fixed set (outcomes, HTTP methods, action kinds) or from data GitHub
signed; never from an unauthenticated request, which could otherwise grow the series without bound.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from bot.core.dora import RepoFigures, StageFigures

NAMESPACE: Final = "ferry"
DORA_LABELS: Final = ("repo", "stage", "window")

# Outcomes of one webhook delivery, as counted in ``ferry_webhook_deliveries_total``.
OUTCOME_ACCEPTED: Final = "accepted"
OUTCOME_DUPLICATE: Final = "duplicate"
OUTCOME_UNSIGNED: Final = "unsigned"
OUTCOME_BAD_SIGNATURE: Final = "bad_signature"
OUTCOME_MALFORMED: Final = "malformed"
OUTCOME_TOO_LARGE: Final = "too_large"
OUTCOME_PING: Final = "ping"
# Refused with 503 while Ferry is starting and already holds as many deliveries as it may.
OUTCOME_BUSY: Final = "busy"
# Counted in addition to "accepted" when the background work for an accepted delivery raised.
OUTCOME_FAILED: Final = "failed"
DELIVERY_OUTCOMES: Final = (
    OUTCOME_ACCEPTED,
    OUTCOME_DUPLICATE,
    OUTCOME_UNSIGNED,
    OUTCOME_BAD_SIGNATURE,
    OUTCOME_MALFORMED,
    OUTCOME_TOO_LARGE,
    OUTCOME_PING,
    OUTCOME_BUSY,
    OUTCOME_FAILED,
)
# The event label for deliveries rejected before their signature was checked: the header is not trusted.
EVENT_UNVERIFIED: Final = "unverified"

# A merge must reach Argo CD as a sync request within a second, so the low buckets are fine-grained.
SYNC_LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 15.0, 60.0, 180.0)
RECONCILE_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# GitHub requests per pass: the budget is 2 for an idle pass, 4 while verifying, 6 per pull request opened.
PASS_REQUEST_BUCKETS: Final = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)


class Metrics:
    """The counters, gauges and histograms Ferry exports, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries = Counter(
            "webhook_deliveries",
            "GitHub webhook deliveries received, by event and outcome",
            ["event", "outcome"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.deliveries_in_flight = Gauge(
            "webhook_deliveries_in_flight",
            "accepted deliveries whose background work has not finished yet",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.reconcile_passes = Counter(
            "reconcile_passes",
            "reconcile passes over one repository, by outcome",
            ["outcome"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.reconcile_duration = Histogram(
            "reconcile_duration_seconds",
            "wall time of one reconcile pass over one repository",
            buckets=RECONCILE_BUCKETS,
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.github_requests = Counter(
            "github_requests",
            "requests made to the GitHub API, by method and HTTP status",
            ["method", "status"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.pass_github_requests = Histogram(
            "pass_github_requests",
            "GitHub requests sent by one reconcile pass, by kind of pass (idle, verifying, acting)",
            ["kind"],
            buckets=PASS_REQUEST_BUCKETS,
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.github_rate_limit_remaining = Gauge(
            "github_rate_limit_remaining",
            "the x-ratelimit-remaining header of the latest GitHub response",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.actions = Counter(
            "actions",
            "actions performed by reconcile passes, by kind",
            ["kind"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.sync_latency = Histogram(
            "sync_latency_seconds",
            "seconds from a merged promotion's webhook arriving to its Argo CD sync request",
            buckets=SYNC_LATENCY_BUCKETS,
            namespace=NAMESPACE,
            registry=self.registry,
        )

        # Delivery figures (bot.core.dora), set each time a repository's ledger is read; a figure without
        # data (n/a) has no series rather than a misleading 0. ``window`` is ``7d``, ``30d``.
        def dora(name: str, what: str) -> Gauge:
            return Gauge(f"dora_{name}", what, DORA_LABELS, namespace=NAMESPACE, registry=self.registry)

        self.dora: dict[str, Gauge] = {
            "deployment_frequency": dora(
                "deployment_frequency", "verified deployments per day of a stage over the window"
            ),
            "lead_time_median": dora(
                "lead_time_median_seconds", "median seconds from image pushed to verified in the stage"
            ),
            "lead_time_p90": dora(
                "lead_time_p90_seconds", "90th percentile seconds from image pushed to verified in the stage"
            ),
            "change_failure_rate": dora(
                "change_failure_rate", "failed or rolled-back verifications / all decided ones (0..1)"
            ),
            "time_to_restore_median": dora(
                "time_to_restore_median_seconds", "median seconds from a failure to the next verified freight"
            ),
        }
        self._dora_series: dict[str, set[tuple[str, str, str]]] = {}

    def set_delivery(self, repo: str, found: RepoFigures) -> None:
        """The gauges of one repository's figures: its series set anew, those now without data removed."""
        old = self._dora_series.get(repo, set())
        new: set[tuple[str, str, str]] = set()
        for figure in found.figures:
            labels = (repo, figure.stage, f"{figure.window_days}d")
            for key, gauge in self.dora.items():
                value = _dora_value(figure, key)
                if value is None:
                    _remove(gauge, labels)
                    continue
                gauge.labels(*labels).set(value)
                new.add(labels)
        for labels in old - new:
            for gauge in self.dora.values():
                _remove(gauge, labels)
        self._dora_series[repo] = new

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of every metric, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _dora_value(figure: StageFigures, key: str) -> float | None:
    value: float | timedelta | None = getattr(figure, key)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def _remove(gauge: Gauge, labels: tuple[str, str, str]) -> None:
    with contextlib.suppress(KeyError):  # never set for this figure
        gauge.remove(*labels)
