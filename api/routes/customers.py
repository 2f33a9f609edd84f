"""Customers, their tenants and consent links."""
from typing import Literal

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status

from api import schemas as s
from api import selectors
from api.api import caller_of, guarded
from api.problems import Problem
from api.routes.common import keyset_page
from exchange.models import HomeApp
from onboarding import selectors as onboarding_selectors
from onboarding import services as onboarding_services
from onboarding.models import Customer, CustomerTenant

# --- customers and tenants -------------------------------------------------------------------------------------------
onboarding = Router(tags=["customers and tenants"])


def _customer(c: Customer) -> dict:
    return {"id": c.pk, "name": c.name, "contact_name": c.contact_name, "contact_email": c.contact_email,
            "notes": c.notes, "created_at": c.created_at, "tenant_count": getattr(c, "tenant_count", 0)}


@guarded(onboarding, "get", "/customers", capability="view", response=s.page_of(s.CustomerOut))
def customer_list(request, search: str = "", cursor: str | None = None, limit: int = 100):
    return keyset_page(onboarding_selectors.customers(search=search[:100]), field="pk", descending=False, cursor=cursor,
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
            "last_outcome": t.last_outcome, "consecutive_failures": t.consecutive_failures,
            "failing_since": t.failing_since, "last_check_at": t.last_check_at,
            "last_check_outcome": t.last_check_outcome}


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
    return keyset_page(found, field="pk", descending=False, cursor=cursor, limit=limit, shape=_tenant)


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
