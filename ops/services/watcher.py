"""The state watcher: tenants' transitions, credential findings and endpoint outages, compared with what was last
acted on, as new alerts (routed and queued by ops.services.routing)."""
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from exchange.breaker import outages_open
from exchange.lint import ERROR, WARNING, lint_app
from ops import selectors
from ops.models import Alert, AlertKind, FindingWatch, OutageWatch, TenantWatch
from ops.services.routing import alerts_save, deliveries_unstick

LOST_FROM, LOST_TO = ("verified",), ("failing", "no_role")
_WATCH_LOCK_KEY = 0x6F70_7377  # "opsw"


def _label(row: dict) -> str:
    return row["primary_domain"] or str(row["tenant_id"])


TENANT_WATCH_BATCH = 5000


def _consent_alert(row: dict, watch, recent_consent: datetime) -> tuple[bool, Alert | None]:
    """Whether the tenant's consent is news (newer than the one known, or recent for a tenant never seen), and the
    alert it makes (none for an offboarded tenant)."""
    consent_at = row["consent_received_at"]
    known_consent = watch[1] if watch else None
    news = bool(consent_at) and (consent_at > known_consent if known_consent else consent_at >= recent_consent)
    if not news or row["off"]:
        return news, None
    return news, _tenant_alert(row, AlertKind.CONSENT, f"consent:{row['pk']}:{consent_at.isoformat()}",
                               f"Consent received: {_label(row)}",
                               f"The admin of {_label(row)} consented; the first token test follows.")


def _transition_alert(row: dict, was: str, state: str, version: int) -> Alert | None:
    if was in LOST_FROM and state in LOST_TO:
        return _tenant_alert(
            row, AlertKind.LOST_ACCESS, f"tenant:{row['pk']}:{version}:lost_access", f"Access lost: {_label(row)}",
            f"The token test of {_label(row)} no longer verifies access (now: {state.replace('_', ' ')}, "
            f"outcome {row['last_outcome']}).", state=state)
    if was in LOST_TO and state == "verified":
        return _tenant_alert(
            row, AlertKind.RESTORED, f"tenant:{row['pk']}:{version}:restored", f"Access restored: {_label(row)}",
            f"The token test of {_label(row)} verifies access again.", state=state)
    return None


def _tenant_alerts(now: datetime) -> list[Alert]:
    """Compare every tenant's state (one query) with the last state acted on (one query, as tuples); record the
    transitions in a few statements (one UPDATE per new state), whatever the number of tenants."""
    known = {pk: (state, consent_at, version) for pk, state, consent_at, version in
             TenantWatch.objects.values_list("tenant_id", "state", "consent_at", "version").iterator(chunk_size=5000)}
    recent_consent = now - timedelta(minutes=settings.ALERTS_CONSENT_RECENT_MINUTES)
    alerts, new, consents, moved = [], [], [], defaultdict(list)
    for row in selectors.tenant_rows():
        state, consent_at = selectors.tenant_state(row), row["consent_received_at"]
        watch = known.get(row["pk"])
        consent_news, alert = _consent_alert(row, watch, recent_consent)
        alerts += [alert] if alert else []
        if watch is None:
            new.append(TenantWatch(tenant_id=row["pk"], state=state or "draft", consent_at=consent_at,
                                   changed_at=now))
            continue
        if consent_news:
            consents.append(TenantWatch(tenant_id=row["pk"], consent_at=consent_at))
        if state and state != watch[0]:
            moved[state].append(row["pk"])
            alert = _transition_alert(row, watch[0], state, watch[2] + 1)
            alerts += [alert] if alert else []
    _tenant_watches_save(now, new, moved, consents)
    return alerts


def _tenant_watches_save(now: datetime, new: list, moved: dict, consents: list) -> None:
    TenantWatch.objects.bulk_create(new, ignore_conflicts=True, batch_size=TENANT_WATCH_BATCH)
    for state, pks in moved.items():
        for i in range(0, len(pks), TENANT_WATCH_BATCH):
            TenantWatch.objects.filter(pk__in=pks[i:i + TENANT_WATCH_BATCH]).update(
                state=state, version=F("version") + 1, changed_at=now)
    TenantWatch.objects.bulk_update(consents, ["consent_at"], batch_size=500)  # consents trickle in


def _tenant_alert(row: dict, kind: str, key: str, title: str, text: str, **facts) -> Alert:
    return Alert(kind=kind, dedupe_key=key, title=title, text=text, customer_id=row["customer_id"],
                 tenant_id=row["pk"], facts={"tenant": str(row["tenant_id"]), "domain": row["primary_domain"],
                                             "cloud": row["cloud"], "outcome": row["last_outcome"], **facts})


def _finding_alerts(now: datetime) -> list[Alert]:
    redirect_uri = settings.PORTAL_PUBLIC_URL + "/consent/callback/"
    seen: dict[str, tuple] = {}
    for app, fics, identities in selectors.lint_inputs():
        findings, per_fic = lint_app(app, fics=fics, identities=identities, portal_redirect_uri=redirect_uri)
        for finding in findings + [f for items in per_fic.values() for f in items]:
            if finding.severity in (ERROR, WARNING):
                key = f"{app.pk}:{finding.code}:{finding.fic_id or ''}:{finding.identity_id or ''}"
                seen[key] = (app, finding)
    known = {w.key: w for w in FindingWatch.objects.all()}
    alerts = []
    for key, (app, finding) in seen.items():
        watch = known.get(key)
        if watch is None or watch.resolved_at:
            if watch is None:
                watch = FindingWatch.objects.create(key=key, app_id=app.pk, code=finding.code, first_seen=now)
            else:
                FindingWatch.objects.filter(pk=watch.pk).update(first_seen=now, resolved_at=None)
            alerts.append(Alert(kind=AlertKind.FINDING, dedupe_key=f"finding:{key}:{now.isoformat()}",
                                title=f"Credential finding on {app.name}: {finding.code}",
                                text=f"{finding.message}\nFix: {finding.fix}",
                                facts={"app": app.name, "code": finding.code, "severity": finding.severity}))
    for key, watch in known.items():
        if key not in seen and watch.resolved_at is None:
            FindingWatch.objects.filter(pk=watch.pk).update(resolved_at=now)
            alerts.append(Alert(kind=AlertKind.FINDING_RESOLVED,
                                dedupe_key=f"finding_resolved:{key}:{watch.first_seen.isoformat()}",
                                title=f"Credential finding resolved: {watch.code}",
                                text=f"The finding {watch.code} of home app #{watch.app_id} is gone.",
                                facts={"code": watch.code}))
    return alerts


def _outages_observed(now: datetime) -> dict[tuple[str, str], dict]:
    """Open circuit breakers (exchange.breaker); for a cloud without one, many tenants' tests ending "transient"
    within ALERTS_OUTAGE_WINDOW_MINUTES count as an outage of the cloud's endpoints ("token_exchange")."""
    observed = {pair: {"since": outage.since.isoformat(), "tenants": outage.failures}
                for pair, outage in outages_open(now=now).items()}
    clouds_open = {cloud for cloud, _ in observed}
    since = now - timedelta(minutes=settings.ALERTS_OUTAGE_WINDOW_MINUTES)
    for cloud, n in selectors.transient_tenants_by_cloud(since=since).items():
        if n >= settings.ALERTS_OUTAGE_MIN_TENANTS and cloud not in clouds_open:
            observed[(cloud, "token_exchange")] = {"tenants": n}
    return observed


def _outage_alerts(now: datetime) -> list[Alert]:
    observed = _outages_observed(now)
    open_rows = {(o.cloud, o.endpoint): o for o in OutageWatch.objects.filter(closed_at=None)}
    alerts = []
    for (cloud, endpoint), facts in sorted(observed.items()):
        if (cloud, endpoint) in open_rows:
            continue
        row = OutageWatch.objects.create(cloud=cloud, endpoint=endpoint, opened_at=now)
        alerts.append(Alert(kind=AlertKind.OUTAGE, dedupe_key=f"outage:{cloud}:{endpoint}:{row.pk}",
                            title=f"Outage: {endpoint} ({cloud} cloud)",
                            text=f"Microsoft's {endpoint} endpoint ({cloud} cloud) fails for many tenants at once "
                                 f"({facts.get('tenants', '?')} within the window). Their tests are held or retried; "
                                 "this is not a fault of the tenants. One notice follows when it answers again.",
                            facts={"cloud": cloud, "endpoint": endpoint, **facts}))
    for (cloud, endpoint), row in open_rows.items():
        if (cloud, endpoint) not in observed:
            OutageWatch.objects.filter(pk=row.pk).update(closed_at=now)
            minutes = round((now - row.opened_at).total_seconds() / 60, 1)
            alerts.append(Alert(kind=AlertKind.OUTAGE_OVER, dedupe_key=f"outage_over:{row.pk}",
                                title=f"Outage over: {endpoint} ({cloud} cloud)",
                                text=f"Microsoft's {endpoint} endpoint ({cloud} cloud) answers again after "
                                     f"{minutes} minutes.",
                                facts={"cloud": cloud, "endpoint": endpoint, "minutes": minutes}))
    return alerts


def _watch_lock() -> bool:
    """One watcher at a time on PostgreSQL (a transaction-scoped advisory lock); SQLite serialises writers anyway."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_WATCH_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def alerts_watch(*, now: datetime | None = None) -> list[Alert]:
    """One pass of the state watcher: tenants' transitions, lint findings, outages; each new alert routed to its
    channels and its deliveries queued (after commit). Running twice at once raises nothing twice."""
    now = now or timezone.now()
    with transaction.atomic():
        if not _watch_lock():
            return []  # another watcher is at it (a beat tick overlapping a slow run)
        alerts = _tenant_alerts(now) + _finding_alerts(now) + _outage_alerts(now)
        created = alerts_save(alerts)
        deliveries_unstick(now)
    return created
