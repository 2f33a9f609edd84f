"""Reads of the dashboard, each bounded whatever the number of tests: tenants by status (the tenants list's own
definition, CustomerTenant.objects.with_status), the tenants needing attention, credential findings, runs, outcomes
over time and hop latency from the rollups, and recent activity with a link on each target."""
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.db.models import Count, F
from django.urls import NoReverseMatch, reverse

from exchange import rollups
from exchange import selectors as exchange_selectors
from exchange.chain import ARM_STEP, HOME_STEP, IMDS_STEP, TENANT_STEP
from exchange.chain_access import ACCESS_STEP
from exchange.lint import ERROR, WARNING
from onboarding.models import CustomerTenant
from portal.models import AuditEvent

S = CustomerTenant.Status
ATTENTION = (S.FAILING, S.NO_ROLE, S.DECLINED)  # the statuses an operator has something to do about
TESTED = (S.VERIFIED, S.NO_ROLE, S.FAILING)  # a tenant whose last token test said something about it
HOPS = (IMDS_STEP, HOME_STEP, TENANT_STEP, ARM_STEP, ACCESS_STEP)  # the chain's order
HOP_LABELS = {IMDS_STEP: "Managed-identity token (IMDS)", HOME_STEP: "Home tenant token (FIC exchange)",
              TENANT_STEP: "Customer tenant token", ARM_STEP: "Azure Resource Manager probe",
              ACCESS_STEP: "Agreed access check (ARM role assignments)"}
ATTENTION_SHOWN = 10
RECENT_EVENTS_SHOWN = 8
HOURS_CHARTED, DAYS_CHARTED = 48, 30
LATENCY_HOURS = 24


def tenants_url(**params) -> str:
    """The tenants page filtered by `params`."""
    path = reverse("onboarding:tenant-list")
    return f"{path}?{urlencode(params)}" if params else path


def tenant_tiles() -> list[dict]:
    """One tile per status with its count (one grouped query over the tenant table), linking to that list."""
    counts = dict(CustomerTenant.objects.with_status().order_by().values("state").annotate(n=Count("pk"))
                  .values_list("state", "n"))
    return [{"status": status, "label": status.label, "colour": status.colour, "n": counts.get(status, 0),
             "url": tenants_url(status=status.value)} for status in S]


def tenant_success(tiles: list[dict]) -> dict:
    """Success by distinct tenant, from the tiles: of the tenants whose last test said something (verified, no role
    or failing), the share verified."""
    n = {tile["status"]: tile["n"] for tile in tiles}
    tested = sum(n[status] for status in TESTED)
    return {"tested": tested, "verified": n[S.VERIFIED],
            "rate": round(100 * n[S.VERIFIED] / tested) if tested else None}


def tenants_needing_attention(*, limit: int) -> list[CustomerTenant]:
    """The first of the tenants in the attention statuses, longest failing first (their count is the tiles')."""
    return list(CustomerTenant.objects.with_status_in(*ATTENTION).select_related("customer")
                .order_by(F("failing_since").asc(nulls_last=True), "pk")[:limit])


def credential_findings() -> list[dict]:
    """The FIC lint's errors and warnings across home apps (as the identities page shows them), errors first."""
    found = []
    for entry in exchange_selectors.fic_inventory_report().apps:
        named = [(None, f) for f in entry["findings"]] + [(fic, f) for fic, items in entry["fics"] for f in items]
        found += [{"app": entry["app"], "fic": fic, "finding": f} for fic, f in named if f.severity in (ERROR, WARNING)]
    return sorted(found, key=lambda item: item["finding"].severity != ERROR)


def runs(*, now: datetime) -> dict:
    """The last day's runs (not tenants) and the commonest diagnoses of the last 30 days, from the rollups."""
    return exchange_selectors.runs_overview(now=now)


def _chart(series: dict, fmt: str, key: str) -> dict:
    labels = [start.strftime(fmt) for start in series["starts"]]
    outcomes = [{"value": o.value, "label": o.label, "counts": series["counts"][o]} for o in series["outcomes"]]
    rows = [{"label": label, "counts": [o["counts"][i] for o in outcomes], "total": series["totals"][i]}
            for i, label in enumerate(labels)]
    return {"source_id": f"chart-{key}-data", "outcomes": outcomes, "rows": rows, "total": sum(series["totals"]),
            "data": {"labels": labels, "datasets": [{"outcome": o["value"], "label": o["label"], "data": o["counts"]}
                                                    for o in outcomes]}}


def charts(*, now: datetime) -> dict:
    return {"hours": _chart(rollups.outcome_series(period=rollups.HOUR, count=HOURS_CHARTED, now=now), "%d %H:00", "hours"),
            "days": _chart(rollups.outcome_series(period=rollups.DAY, count=DAYS_CHARTED, now=now), "%Y-%m-%d", "days")}


def latency(*, now: datetime) -> list[dict]:
    hops = rollups.hop_latency(since=now - timedelta(hours=LATENCY_HOURS - 1), order=HOPS)
    return [{**hop, "label": HOP_LABELS.get(hop["hop"], hop["hop"])} for hop in hops]


# Where each audit target is shown (targets with no page of their own, e.g. a staff account, get no link).
TARGET_PAGES = {"tenant": "onboarding:tenant-detail", "customer": "onboarding:customer-detail",
                "tokentest": "exchange:tokentest-detail", "sweep": "exchange:sweep-detail",
                "homeapp": "exchange:homeapp-edit", "identity": "exchange:identity-edit"}
TARGET_LISTS = {"fic": "exchange:identities", "alertchannel": "ops:alert-settings", "alertroute": "ops:alert-settings",
                "route": "ops:alert-settings"}
TARGETS_ON_TENANT = {"consent_link"}


def _target_url(event: AuditEvent) -> str:
    try:
        if event.target_type in TARGET_PAGES and event.target_id.isdigit():
            return reverse(TARGET_PAGES[event.target_type], args=[int(event.target_id)])
        return reverse(TARGET_LISTS[event.target_type]) if event.target_type in TARGET_LISTS else ""
    except NoReverseMatch:
        return ""


def recent_activity(*, limit: int) -> list[dict]:
    """The latest audit events, each with its target's page and its tenant (one more query for the tenants)."""
    events = list(AuditEvent.objects.order_by("-seq")[:limit])
    keys = {_uuid(e.tenant_id) for e in events} - {None}
    tenants = {t.tenant_id: t for t in CustomerTenant.objects.order_by().filter(tenant_id__in=keys).only(
        "pk", "tenant_id", "primary_domain", "display_name")}
    items = [{"event": e, "target_url": _target_url(e), "tenant": tenants.get(_uuid(e.tenant_id))} for e in events]
    for item in items:  # a consent link is shown on its tenant's page
        if item["event"].target_type in TARGETS_ON_TENANT and item["tenant"] and not item["target_url"]:
            item["target_url"] = reverse("onboarding:tenant-detail", args=[item["tenant"].pk])
    return items


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def dashboard(*, now: datetime) -> dict:
    """Everything the dashboard shows: about twelve queries, none of them over the token tests or their steps."""
    tiles = tenant_tiles()
    return {"tiles": tiles, "success": tenant_success(tiles), "tenants_total": sum(tile["n"] for tile in tiles),
            "attention": tenants_needing_attention(limit=ATTENTION_SHOWN),
            "attention_total": sum(tile["n"] for tile in tiles if tile["status"] in ATTENTION),
            "attention_links": [tile for tile in tiles if tile["status"] in ATTENTION],
            "findings": credential_findings(), "runs": runs(now=now), "charts": charts(now=now),
            "latency": latency(now=now), "latency_hours": LATENCY_HOURS, "hours_charted": HOURS_CHARTED,
            "days_charted": DAYS_CHARTED, "recent": recent_activity(limit=RECENT_EVENTS_SHOWN)}
