"""Token tests, sweeps, the exchange's health and the FIC inventory with its lint."""
from datetime import datetime
from typing import Literal

from django.db import transaction
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status

from api import schemas as s
from api.api import caller_of, guarded
from api.problems import Problem
from api.routes.common import bounded_limit, keyset_page
from exchange import selectors as exchange_selectors
from exchange import services as exchange_services
from exchange.clouds import consent_redirect_uri
from exchange.diagnosis import diagnose
from exchange.entra import oidc_discovery_problem_cached
from exchange.lint import lint_app, worst
from exchange.models import HomeApp, ManagedIdentity, Sweep, TokenTest
from onboarding import selectors as onboarding_selectors
from onboarding import services as onboarding_services
from onboarding.models import CustomerTenant

# --- token tests and sweeps ------------------------------------------------------------------------------------------
exchange = Router(tags=["token tests and sweeps"])


def _test(t: TokenTest) -> dict:
    return {"id": t.pk, "tenant_id": t.tenant_id, "tenant": str(t.tenant), "trigger": t.trigger,
            "sweep_id": t.sweep_id, "status": t.status, "outcome": t.outcome, "diagnosis_code": t.diagnosis_code,
            "attempts": t.attempts, "queued_at": t.queued_at, "started_at": t.started_at,
            "finished_at": t.finished_at}


def _test_detail(t: TokenTest) -> dict:
    d = diagnose(t)
    return {**_test(t), "diagnosis": None if d is None else {
        "code": d.code, "outcome": d.outcome, "title": d.title, "cause": d.cause, "fix": d.fix,
        "fix_place": d.fix_place, "severity": d.severity},
        "steps": [{f: getattr(step, f) for f in s.StepOut.model_fields} for step in t.steps.all()]}


class TokenTestFilters(Schema):
    tenant_pk: int | None = None
    status: Literal[tuple(TokenTest.Status.values)] | None = None  # type: ignore[valid-type]
    outcome: Literal[tuple(TokenTest.Outcome.values)] | None = None  # type: ignore[valid-type]
    code: str = ""
    since: datetime | None = None
    until: datetime | None = None


@guarded(exchange, "get", "/token-tests", capability="view", response=s.page_of(s.TokenTestOut))
def token_test_list(request, filters: Query[TokenTestFilters], cursor: str | None = None, limit: int = 100):
    tests = exchange_selectors.token_tests(tenant_id=filters.tenant_pk, status=filters.status or "",
                                           outcome=filters.outcome or "", code=filters.code[:40],
                                           since=filters.since, until=filters.until)
    return keyset_page(tests, field="pk", descending=True, cursor=cursor, limit=limit, shape=_test)


@guarded(exchange, "post", "/tenants/{tenant_pk}/token-tests", capability="operate", idempotent=True,
         response={202: s.TokenTestOut})
def token_test_start(request, tenant_pk: int):
    """Queue a token test of the tenant (the chain runs on a worker); poll GET /token-tests/{id} for its steps."""
    tenant = get_object_or_404(CustomerTenant, pk=tenant_pk)
    if tenant.testing_ended:
        raise Problem(409, "tenant-offboarded", "Tenant offboarded",
                      "The tenant is offboarded and the app's removal is confirmed: it is not tested any more.")
    stop = exchange_services.estop_current()
    if stop is not None and stop.tests_paused:
        raise Problem(409, "emergency-stop", "Emergency stop in force", stop.refusal("Token test"))
    running = exchange_selectors.tenant_running_test(tenant)
    if running:
        raise Problem(409, "test-running", "A token test is already running",
                      f"Token test {running.pk} of this tenant is {running.status}.", test_id=running.pk)
    with transaction.atomic():
        test = exchange_services.token_test_start(tenant=tenant, trigger=TokenTest.Trigger.MANUAL,
                                                  actor=caller_of(request).actor)
    test.refresh_from_db()
    return Status(202, _test(TokenTest.objects.select_related("tenant").get(pk=test.pk)))


@guarded(exchange, "get", "/token-tests/{test_id}", capability="view", response=s.TokenTestDetailOut)
def token_test_detail(request, test_id: int):
    try:
        return _test_detail(exchange_selectors.token_test_detail(test_id))
    except TokenTest.DoesNotExist as exc:
        raise Problem(404, "not-found", "Not found", f"No token test {test_id}.") from exc


def _sweep(sw: Sweep) -> dict:
    return {"id": sw.pk, "trigger": sw.trigger, "started_at": sw.started_at, "finished_at": sw.finished_at,
            "total": sw.total, "done": sw.done, "succeeded": sw.succeeded, "failed": sw.failed,
            "percent": sw.percent, "running": sw.running}


@guarded(exchange, "post", "/sweeps", capability="operate", idempotent=True, response={202: s.SweepOut})
def sweep_start(request):
    """Test every active tenant; poll GET /sweeps/{id} for progress."""
    running = Sweep.objects.filter(finished_at=None).first()
    if running:
        raise Problem(409, "sweep-running", "A sweep is already running", f"Sweep {running.pk} is running.",
                      sweep_id=running.pk)
    try:
        sweep = onboarding_services.sweep_all_start(trigger=Sweep.Trigger.MANUAL, actor=caller_of(request).actor)
    except exchange_services.EmergencyStopped as exc:
        raise Problem(409, "emergency-stop", "Emergency stop in force", str(exc)) from exc
    sweep.refresh_from_db()
    return Status(202, _sweep(sweep))


@guarded(exchange, "get", "/sweeps", capability="view", response=list[s.SweepOut])
def sweep_list(request, limit: int = 20):
    return [_sweep(sw) for sw in exchange_selectors.sweeps(bounded_limit(limit))]


@guarded(exchange, "get", "/sweeps/{sweep_id}", capability="view", response=s.SweepOut)
def sweep_detail(request, sweep_id: int):
    return _sweep(get_object_or_404(Sweep, pk=sweep_id))


@guarded(exchange, "get", "/health", capability="view", response=s.HealthOut)
def health_summary(request):
    """Exchange health: tenants by status, the last day's runs and success rate, the commonest diagnoses."""
    return onboarding_selectors.health_overview()


# --- the FIC inventory and its lint ----------------------------------------------------------------------------------
def _finding(f) -> dict:
    return {"code": f.code, "severity": f.severity, "message": f.message, "fix": f.fix}


@guarded(exchange, "get", "/fic-inventory", capability="view", response=list[s.HomeAppOut])
def fic_inventory(request):
    """Each home app with its federated credentials as last read from Graph, and the lint's findings."""
    identities = list(ManagedIdentity.objects.all())
    redirect_uri = consent_redirect_uri()
    out = []
    for app in HomeApp.objects.prefetch_related("credentials"):
        fics = [f for f in app.credentials.all() if f.removed_at is None]
        findings, per_fic = lint_app(app, fics=fics, identities=identities, portal_redirect_uri=redirect_uri,
                                     discovery=oidc_discovery_problem_cached)
        everything = findings + [f for items in per_fic.values() for f in items]
        out.append({"id": app.pk, "name": app.name, "client_id": str(app.client_id),
                    "home_tenant_id": str(app.home_tenant_id), "cloud": app.cloud,
                    "graph_synced_at": app.graph_synced_at, "status": worst(everything),
                    "findings": [_finding(f) for f in findings],
                    "credentials": [{"id": f.pk, "graph_id": f.graph_id, "name": f.name, "issuer": f.issuer,
                                     "subject": f.subject, "audiences": f.audiences, "description": f.description,
                                     "first_seen": f.first_seen, "last_seen": f.last_seen,
                                     "findings": [_finding(x) for x in per_fic.get(f.pk, [])]} for f in fics]})
    return out
