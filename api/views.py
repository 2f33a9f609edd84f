"""The API's routes: thin, each a role check (guarded), the same services and selectors the pages use, and a body
shaped by api/schemas.py."""
import json
from datetime import datetime
from typing import Literal

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Query, Router, Schema, Status

from api import schemas as s
from api import selectors, services
from api.api import Problem, _problem_responses, api, caller_of, guarded, problem_response
from api.models import IdentityProvider, PortalToken
from exchange import selectors as exchange_selectors
from exchange import services as exchange_services
from exchange.clouds import consent_redirect_uri
from exchange.diagnosis import diagnose
from exchange.entra import oidc_discovery_problem_cached
from exchange.lint import lint_app, worst
from exchange.models import HomeApp, ManagedIdentity, Sweep, TokenTest
from onboarding import selectors as onboarding_selectors
from onboarding import services as onboarding_services
from onboarding.models import Customer, CustomerTenant
from portal import selectors as portal_selectors
from portal.services import Actor, audit_record, client_ip

MAX_LIMIT = 500


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))


def _page(queryset, *, field: str, descending: bool, cursor: str | None, limit: int, shape):
    try:
        rows, next_cursor = selectors.page_after(queryset, field=field, descending=descending, cursor=cursor,
                                                 limit=_limit(limit))
    except ValueError as exc:
        raise Problem(400, "invalid-cursor", "Invalid cursor", "Use the next_cursor of a previous page.") from exc
    return {"items": [shape(row) for row in rows], "next_cursor": next_cursor}


# --- the token exchange ----------------------------------------------------------------------------------------------
sts = Router(tags=["token exchange"])


@sts.post("/exchange", auth=None, response={200: s.ExchangeOut}, openapi_extra={
    "x-required-capability": "none",
    "responses": _problem_responses(400, 401, 422, 429, 503)})
def sts_exchange(request, body: s.ExchangeIn, response: HttpResponse):
    """Exchange a workload's platform token (Azure managed identity, GitHub Actions, any registered OIDC issuer) for
    a short-lived portal access token."""
    ip = client_ip(request)
    wait = services.rate_limit_hit(key=f"exchange:{ip}", limit=settings.API_EXCHANGE_RATE_LIMIT,
                                   actor=Actor.anonymous(ip), ip=ip)
    if wait is not None:
        raise Problem(429, "rate-limited", "Too many requests",
                      f"At most {settings.API_EXCHANGE_RATE_LIMIT} exchanges a minute per address.",
                      {"Retry-After": str(wait)})
    try:
        grant = services.sts_exchange(audience=body.audience, issuer_uri=body.issuer_uri, jwt_token=body.jwt_token,
                                      ip=ip)
    except services.ExchangeRefused as refused:
        title = {400: "Malformed token", 503: "Issuer unavailable"}.get(refused.status, "Token not accepted")
        return problem_response(request, refused.status, f"token-{refused.public.replace('_', '-')}", title,
                                services.PUBLIC_DETAIL[refused.public],
                                {"Retry-After": "60"} if refused.status == 503 else None)
    response["Cache-Control"] = "no-store"  # a token response (RFC 6749 §5.1)
    return {"access_token": grant.token, "token_type": "Bearer", "expires_in": grant.expires_in,
            "expires_at": grant.portal_token.expires_at, "role": grant.provider.role,
            "identity_provider": grant.provider.name}


@guarded(sts, "post", "/revoke", capability="any", response={204: None})
def sts_revoke(request):
    """Revoke the portal token this request carries (a workload done with its session)."""
    caller = caller_of(request)
    services.portal_token_revoke(portal_token=caller.portal_token, actor=caller.actor, ip=client_ip(request))
    return Status(204, None)


# --- identity providers and portal tokens (admin) -----------------------------------------------------------------
trust = Router(tags=["identity providers"])


def _provider(p: IdentityProvider) -> dict:
    return {"id": p.pk, "created_at": p.created_at, **{f: getattr(p, f) for f in services.PROVIDER_FIELDS}}


@guarded(trust, "get", "/identity-providers", capability="administer", response=list[s.IdentityProviderOut])
def identity_provider_list(request):
    return [_provider(p) for p in selectors.identity_providers()]


@guarded(trust, "post", "/identity-providers", capability="administer", idempotent=True,
         response={201: s.IdentityProviderOut})
def identity_provider_create(request, body: s.IdentityProviderIn):
    provider = services.identity_provider_create(actor=caller_of(request).actor, **body.dict())
    return Status(201, _provider(provider))


@guarded(trust, "patch", "/identity-providers/{provider_id}", capability="administer", idempotent=True,
         response=s.IdentityProviderOut)
def identity_provider_update(request, provider_id: int, body: s.IdentityProviderPatch):
    provider = get_object_or_404(IdentityProvider, pk=provider_id)
    changes = {k: v for k, v in body.dict(exclude_unset=True).items() if v is not None}
    return _provider(services.identity_provider_update(provider=provider, actor=caller_of(request).actor, **changes))


def _portal_token(t: PortalToken) -> dict:
    return {"id": t.pk, "identity_provider": t.provider.name, "subject": t.subject, "issued_at": t.issued_at,
            "expires_at": t.expires_at, "revoked_at": t.revoked_at, "last_used_at": t.last_used_at,
            "active": t.active}


@guarded(trust, "get", "/portal-tokens", capability="administer", response=s.page_of(s.PortalTokenOut))
def portal_token_list(request, active: bool = False, cursor: str | None = None, limit: int = 100):
    tokens = PortalToken.objects.select_related("provider")
    if active:
        tokens = tokens.filter(revoked_at=None, expires_at__gt=timezone.now())
    return _page(tokens, field="pk", descending=True, cursor=cursor, limit=limit, shape=_portal_token)


@guarded(trust, "post", "/portal-tokens/{token_id}/revoke", capability="administer", response=s.PortalTokenOut)
def portal_token_revoke(request, token_id: int):
    token = get_object_or_404(PortalToken.objects.select_related("provider"), pk=token_id)
    services.portal_token_revoke(portal_token=token, actor=caller_of(request).actor, ip=client_ip(request))
    return _portal_token(token)


# --- customers and tenants -------------------------------------------------------------------------------------------
onboarding = Router(tags=["customers and tenants"])


def _customer(c: Customer) -> dict:
    return {"id": c.pk, "name": c.name, "contact_name": c.contact_name, "contact_email": c.contact_email,
            "notes": c.notes, "created_at": c.created_at, "tenant_count": getattr(c, "tenant_count", 0)}


@guarded(onboarding, "get", "/customers", capability="view", response=s.page_of(s.CustomerOut))
def customer_list(request, search: str = "", cursor: str | None = None, limit: int = 100):
    return _page(onboarding_selectors.customers(search=search[:100]), field="pk", descending=False, cursor=cursor,
                 limit=limit, shape=_customer)


@guarded(onboarding, "post", "/customers", capability="operate", idempotent=True, response={201: s.CustomerOut})
def customer_create(request, body: s.CustomerIn):
    customer = onboarding_services.customer_create(actor=caller_of(request).actor, **body.dict())
    return Status(201, _customer(customer))


@guarded(onboarding, "get", "/customers/{customer_id}", capability="view", response=s.CustomerOut)
def customer_detail(request, customer_id: int):
    return _customer(get_object_or_404(onboarding_selectors.customers(), pk=customer_id))


def _tenant(t: CustomerTenant) -> dict:
    return {"id": t.pk, "customer_id": t.customer_id, "customer": t.customer.name, "tenant_id": str(t.tenant_id),
            "cloud": t.cloud, "primary_domain": t.primary_domain, "display_name": t.display_name,
            "region": t.region, "status": t.status, "status_label": t.status_label, "home_app_id": t.home_app_id,
            "created_at": t.created_at, "invited_at": t.invited_at, "consent_received_at": t.consent_received_at,
            "verified_at": t.verified_at, "offboarded_at": t.offboarded_at, "last_tested_at": t.last_tested_at,
            "last_outcome": t.last_outcome, "consecutive_failures": t.consecutive_failures}


class TenantFilters(Schema):
    customer_id: int | None = None
    status: Literal[tuple(CustomerTenant.Status.values)] | None = None  # type: ignore[valid-type]
    cloud: Literal["global", "usgov", "china"] | None = None
    outcome: str = ""
    search: str = ""


@guarded(onboarding, "get", "/tenants", capability="view", response=s.page_of(s.TenantOut))
def tenant_list(request, filters: Query[TenantFilters], cursor: str | None = None, limit: int = 100):
    found = selectors.tenants(customer_id=filters.customer_id, status=filters.status or "",
                              cloud=filters.cloud or "", outcome=filters.outcome[:24], search=filters.search[:100])
    return _page(found, field="pk", descending=False, cursor=cursor, limit=limit, shape=_tenant)


@guarded(onboarding, "post", "/tenants", capability="operate", idempotent=True, response={201: s.TenantOut})
def tenant_add(request, body: s.TenantIn):
    """Add a customer's tenant by verified domain or tenant id (resolved through OpenID discovery)."""
    customer = get_object_or_404(Customer, pk=body.customer_id)
    if body.home_app_id is not None:
        home_app = get_object_or_404(HomeApp, pk=body.home_app_id)
    else:
        apps = list(HomeApp.objects.all()[:2])
        if len(apps) != 1:
            raise Problem(422, "home-app-needed", "Choose a home app",
                          "No home app is registered yet." if not apps else
                          "More than one home app is registered: send home_app_id.")
        home_app = apps[0]
    tenant = onboarding_services.tenant_add(customer=customer, domain_or_id=body.domain_or_id, home_app=home_app,
                                            cloud=body.cloud, actor=caller_of(request).actor)
    return Status(201, _tenant(CustomerTenant.objects.select_related("customer").get(pk=tenant.pk)))


@guarded(onboarding, "get", "/tenants/{tenant_pk}", capability="view", response=s.TenantOut)
def tenant_detail(request, tenant_pk: int):
    return _tenant(get_object_or_404(CustomerTenant.objects.select_related("customer"), pk=tenant_pk))


class OnceOnly(dict):
    """An answer holding a secret shown once: an idempotent retry is told what was done, not given the secret."""

    idempotency_record: dict


@guarded(onboarding, "post", "/tenants/{tenant_pk}/consent-links", capability="operate", idempotent=True,
         response={201: s.ConsentLinkOut})
def consent_link_issue(request, tenant_pk: int, response: HttpResponse):
    """Issue a new single-use consent link (revoking earlier ones). The URL is in this answer only."""
    tenant = get_object_or_404(CustomerTenant.objects.select_related("customer", "home_app"), pk=tenant_pk)
    link, url = onboarding_services.consent_link_issue(tenant=tenant, actor=caller_of(request).actor)
    response["Cache-Control"] = "no-store"  # the URL carries the link's secret
    body = OnceOnly(id=link.pk, tenant_id=tenant.pk, url=url, issued_at=link.issued_at, expires_at=link.expires_at)
    body.idempotency_record = {"detail": f"Consent link {link.pk} was issued by the first request with this key; "
                                         "its URL is shown only once. Issue a new link with a new key.",
                               "consent_link_id": link.pk}
    return Status(201, body)


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
    return _page(tests, field="pk", descending=True, cursor=cursor, limit=limit, shape=_test)


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
    return [_sweep(sw) for sw in exchange_selectors.sweeps(_limit(limit))]


@guarded(exchange, "get", "/sweeps/{sweep_id}", capability="view", response=s.SweepOut)
def sweep_detail(request, sweep_id: int):
    return _sweep(get_object_or_404(Sweep, pk=sweep_id))


@guarded(exchange, "get", "/health", capability="view", response=s.HealthOut)
def health_summary(request):
    """Exchange health: tenants by last outcome, recent success rate, the commonest failure codes."""
    health = onboarding_selectors.health_overview()
    return {**{f: health[f] for f in s.HealthOut.model_fields if f != "top_codes"},
            "top_codes": [{"code": c["diagnosis_code"], "count": c["n"]} for c in health["top_codes"]]}


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


# --- the audit trail -------------------------------------------------------------------------------------------------
audit = Router(tags=["audit trail"])


class AuditFilters(Schema):
    action: str = ""
    actor: str = ""
    tenant_id: str = ""
    since: datetime | None = None
    until: datetime | None = None


EXPORT_FIELDS = ["seq", "at", "actor_kind", "actor_id", "actor_label", "action", "target_type", "target_id",
                 "tenant_id", "detail", "ip", "prev_hash", "hash"]


def _event(e) -> dict:
    return {f: getattr(e, f) for f in s.AuditEventOut.model_fields}


def _audit_events(filters: AuditFilters):
    return portal_selectors.audit_events(action=filters.action[:64], actor=filters.actor[:200],
                                         tenant_id=filters.tenant_id[:64], since=filters.since, until=filters.until)


@guarded(audit, "get", "/audit-events", capability="audit", response=s.page_of(s.AuditEventOut))
def audit_event_list(request, filters: Query[AuditFilters], cursor: str | None = None, limit: int = 100):
    """Newest first; follow next_cursor for older events."""
    return _page(_audit_events(filters), field="seq", descending=True, cursor=cursor, limit=limit, shape=_event)


@guarded(audit, "get", "/audit-events/export", capability="audit", response={200: None}, openapi_extra={
    "responses": {"200": {"description": "JSON Lines, oldest first",
                          "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}}})
def audit_event_export(request, filters: Query[AuditFilters]):
    """Stream the (filtered) trail as JSON Lines, oldest first; the export itself is audited."""
    caller = caller_of(request)
    audit_record(action="audit.exported", actor=caller.actor, ip=client_ip(request), detail={
        "format": "jsonl", "via": "api", "filters": {k: str(v) for k, v in filters.dict().items() if v}})
    events = _audit_events(filters).order_by("seq").values_list(*EXPORT_FIELDS)

    def lines():
        for row in events.iterator(chunk_size=2000):
            item = dict(zip(EXPORT_FIELDS, row, strict=True))
            item["at"] = item["at"].isoformat()
            yield json.dumps(item, sort_keys=True) + "\n"

    response = StreamingHttpResponse(lines(), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="audit-{timezone.now():%Y%m%dT%H%M%SZ}.jsonl"'
    return response


api.add_router("/sts", sts)
api.add_router("", trust)
api.add_router("", onboarding)
api.add_router("", exchange)
api.add_router("", audit)
