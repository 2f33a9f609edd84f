"""Prometheus metrics read from the database at scrape time: every web process reports the fleet's truth (not its own
counters), so a multi-process gunicorn needs no shared metric files. Labels are bounded: outcomes and diagnosis codes
from the catalogue (anything else is "other"), step names of the chain, tenant states, alert kinds — never a tenant."""
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from exchange.breaker import ENDPOINTS, outages_open
from exchange.diagnosis import CATALOGUE
from exchange.models import TokenTest
from ops import selectors
from ops.models import AlertKind, Channel, Delivery

STEP_NAMES = frozenset(ENDPOINTS) | {"chain"}
OUTCOMES = frozenset(TokenTest.Outcome.values)
DIAGNOSES = frozenset(CATALOGUE) | {"outage", ""}
BUCKETS_MS = [50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]


def _bounded(value: str, allowed) -> str:
    return value if value in allowed else "other"


def _tests(since, minutes: int):
    tests = GaugeMetricFamily("portal_token_tests_recent", f"Token tests finished in the last {minutes} minutes, "
                              "by outcome and diagnosis code", labels=["outcome", "diagnosis"])
    folded: dict[tuple[str, str], int] = {}
    for row in selectors.tests_recent_by_outcome(since=since):
        key = (_bounded(row["outcome"], OUTCOMES), _bounded(row["diagnosis_code"], DIAGNOSES) or "none")
        folded[key] = folded.get(key, 0) + row["n"]
    for (outcome, diagnosis), n in sorted(folded.items()):
        tests.add_metric([outcome, diagnosis], n)
    yield tests


def _steps(since, minutes: int):
    steps = HistogramMetricFamily("portal_token_test_step_duration_seconds", "Duration of each hop of the chain "
                                  f"(steps started in the last {minutes} minutes)", labels=["step"])
    merged: dict[str, dict] = {}
    for row in selectors.step_histograms(since=since, buckets_ms=BUCKETS_MS):
        into = merged.setdefault(_bounded(row["name"], STEP_NAMES), {"n": 0, "total_ms": 0,
                                                                     **{b: 0 for b in BUCKETS_MS}})
        into["n"] += row["n"]
        into["total_ms"] += row["total_ms"] or 0
        for b in BUCKETS_MS:
            into[b] += row[f"le_{b}"]
    for step, agg in sorted(merged.items()):
        buckets = [(str(b / 1000), agg[b]) for b in BUCKETS_MS] + [("+Inf", agg["n"])]
        steps.add_metric([step], buckets, agg["total_ms"] / 1000)
    yield steps


def _tenants():
    tenants = GaugeMetricFamily("portal_tenants", "Customer tenants by state", labels=["state"])
    for state, n in selectors.tenants_by_state().items():
        tenants.add_metric([state], n)
    yield tenants


def _queue(now):
    queue = selectors.queue_state(now=now)
    yield GaugeMetricFamily("portal_token_tests_queued", "Token tests waiting for a worker", value=queue["queued"])
    yield GaugeMetricFamily("portal_token_tests_running", "Token tests running now", value=queue["running"])
    yield GaugeMetricFamily("portal_token_test_oldest_queued_age_seconds", "Age of the oldest queued token test",
                            value=queue["oldest_age"])


def _sweeps():
    latest, finished = selectors.sweep_latest()
    yield GaugeMetricFamily("portal_sweep_running", "1 while the latest sweep runs",
                            value=int(bool(latest and latest.running)))
    yield GaugeMetricFamily("portal_sweep_progress_ratio", "Done/total of the latest sweep",
                            value=(latest.done / latest.total) if latest and latest.total else 0)
    yield GaugeMetricFamily("portal_sweep_tenants", "Tenants in the latest sweep", value=latest.total if latest else 0)
    yield GaugeMetricFamily("portal_sweep_last_duration_seconds", "Duration of the latest finished sweep",
                            value=(finished.finished_at - finished.started_at).total_seconds() if finished else 0)


def _outages(now):
    outages = GaugeMetricFamily("portal_outages_open", "Open circuit breakers (endpoint outages)", labels=["endpoint"])
    open_now: dict[str, int] = dict.fromkeys(ENDPOINTS, 0)
    for _, endpoint in outages_open(now=now):
        open_now[endpoint] = open_now.get(endpoint, 0) + 1
    for endpoint, n in open_now.items():
        outages.add_metric([endpoint], n)
    yield outages


def _alerts():
    alerts_by_kind, deliveries = selectors.alert_counts()
    alerts = CounterMetricFamily("portal_alerts", "Alerts raised, by kind", labels=["kind"])
    counts = dict.fromkeys(AlertKind.values, 0)
    for row in alerts_by_kind:
        kind = _bounded(row["kind"], counts)
        counts[kind] = counts.get(kind, 0) + row["n"]
    for kind, n in counts.items():
        alerts.add_metric([kind], n)
    yield alerts
    sent = CounterMetricFamily("portal_alert_deliveries", "Alert deliveries by channel kind and status",
                               labels=["channel", "status"])
    table = {(kind, status): 0 for kind in Channel.Kind.values for status in Delivery.Status.values}
    for row in deliveries:
        key = (_bounded(row["channel_kind"], Channel.Kind.values), _bounded(row["status"], Delivery.Status.values))
        table[key] = table.get(key, 0) + row["n"]
    for (kind, status), n in table.items():
        sent.add_metric([kind, status], n)
    yield sent


class PortalCollector:
    def collect(self):
        now = timezone.now()
        minutes = settings.METRICS_WINDOW_MINUTES
        since = now - timedelta(minutes=minutes)
        yield from _tests(since, minutes)
        yield from _steps(since, minutes)
        yield from _tenants()
        yield from _queue(now)
        yield from _sweeps()
        yield from _outages(now)
        yield from _alerts()


def metrics_text() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PortalCollector())
    return generate_latest(registry)
