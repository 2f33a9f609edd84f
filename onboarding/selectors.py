"""Reads of onboarding: customers, tenants worth testing, tenants' health, a tenant's timeline and the next step its
status calls for."""
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from exchange import selectors as exchange_selectors
from exchange.access_request import AccessRequest
from exchange.access_request import access_request as build_access_request
from exchange.models import TokenTest
from onboarding.models import ConsentLink, Customer, CustomerTenant
from portal.models import AuditEvent


def customers(*, search: str = "", archived: bool = False, tag: str = "") -> QuerySet[Customer]:
    """Customers (the archived ones instead when `archived`), with their tenant counts and tags."""
    found = Customer.objects.filter(archived_at__isnull=not archived).annotate(
        tenant_count=Count("tenants"),
        verified_count=Count("tenants", filter=Q(tenants__last_outcome=TokenTest.Outcome.VERIFIED, tenants__offboarded_at=None)))
    if search:
        found = found.filter(Q(name__icontains=search) | Q(tenants__primary_domain__icontains=search)
                             | Q(tenants__tenant_id__icontains=search)).distinct()
    if tag:
        found = found.filter(pk__in=Customer.tags.through.objects.filter(tag__name=tag).values("customer_id"))
    return found.prefetch_related("tags").order_by("name")


def active_tenants() -> QuerySet[CustomerTenant]:
    """Tenants worth testing: not offboarded, and consent has at least been received (or a test ran before)."""
    return CustomerTenant.objects.filter(offboarded_at=None, customer__archived_at=None).filter(
        Q(consent_received_at__isnull=False) | Q(verified_at__isnull=False) | Q(last_tested_at__isnull=False))


TENANT_MATCHES = 20  # the tenant picker shows at most this many


def tenant_search(query: str, *, limit: int = TENANT_MATCHES) -> list[CustomerTenant]:
    """Tenants whose domain, name, customer or tenant id contains `query` (a picker's few matches, never all)."""
    query = query.strip()
    if not query:
        return []
    found = (Q(primary_domain__icontains=query) | Q(display_name__icontains=query) | Q(customer__name__icontains=query)
             | Q(tenant_id__icontains=query))
    return list(CustomerTenant.objects.filter(found).select_related("customer")
                .order_by("primary_domain", "pk")[:limit])


def health_overview() -> dict:
    """Tenants (not offboarded) by status — counted by the one SQL definition of a status, as the dashboard's tiles
    are — with the exchange's runs (from the rollups): what the API's /health answers."""
    tenants = CustomerTenant.objects.filter(offboarded_at=None)
    counts = dict(tenants.with_status().order_by().values("state").annotate(n=Count("pk")).values_list("state", "n"))
    S = CustomerTenant.Status
    runs = exchange_selectors.runs_overview()
    return {"tenants_total": sum(counts.values()), "tenants_verified": counts.get(S.VERIFIED, 0),
            "tenants_no_role": counts.get(S.NO_ROLE, 0), "tenants_failing": counts.get(S.FAILING, 0),
            "tenants_untested": tenants.filter(last_outcome="").count(),
            "recent_total": runs["total"], "recent_success_rate": runs["rate"], "running": runs["running"],
            "top_codes": [{"code": code, "count": n} for code, n in runs["codes"]]}


def tenant_timeline(tenant: CustomerTenant, limit: int = 60) -> list[dict]:
    """Everything that happened to a tenant, newest first: audit events and token tests, merged."""
    items = [{"at": e.at, "kind": "audit", "event": e} for e in
             AuditEvent.objects.filter(tenant_id=str(tenant.tenant_id)).exclude(action="tokentest.finished")
             .order_by("-seq")[:limit]]
    items += [{"at": t.finished_at or t.queued_at, "kind": "test", "test": t} for t in
              tenant.token_tests.order_by("-queued_at")[:limit]]
    return sorted(items, key=lambda item: item["at"], reverse=True)[:limit]


def tenant_last_definitive_test(tenant: CustomerTenant):
    """The latest test whose outcome says something about the tenant (its status and next step come from it; a
    check that could not reach Microsoft is shown apart)."""
    no_news = [outcome for outcome in TokenTest.Outcome if not outcome.definitive]
    return tenant.token_tests.filter(finished_at__isnull=False).exclude(outcome__in=no_news).order_by("-queued_at").first()


def current_link(tenant: CustomerTenant) -> ConsentLink | None:
    return tenant.consent_links.order_by("-issued_at").first()


@dataclass(frozen=True)
class NextAction:
    """The next step a tenant's status calls for: what to do (`text`), and its primary button — a form posting to
    `url_name` (ISSUE_LINK, TEST_NOW), a link to the last test (OPEN_TEST), or copying the role request (COPY_REQUEST);
    NONE offers no button. `str()` is the text, as NEXT_STEPS used to be."""
    text: str
    button: str = ""
    kind: str = ""

    def __str__(self):
        return self.text


ISSUE_LINK, TEST_NOW, OPEN_TEST, COPY_REQUEST, NONE = "issue_link", "test_now", "open_test", "copy_request", ""
_S = CustomerTenant.Status
NEXT_STEPS = {
    _S.DRAFT: NextAction("Issue a consent link and send it to the customer's administrator.",
                         "Issue a consent link", ISSUE_LINK),
    _S.INVITED: NextAction("Waiting for the customer's administrator to consent. Re-issue the link if it expired or "
                           "was lost.", "Re-issue the consent link", ISSUE_LINK),
    _S.CONSENT_RECEIVED: NextAction("Consent received: the verification token test is running.",
                                    "Open the verification", OPEN_TEST),
    _S.VERIFIED: NextAction("Nothing to do: access works. Sweeps keep testing it.", "Test now", TEST_NOW),
    _S.NO_ROLE: NextAction("Consent worked, but the app does not hold the access agreed with the customer. Send their "
                           "administrator the role request below, then press Test now.",
                           "Copy the role request", COPY_REQUEST),
    _S.FAILING: NextAction("The last token test failed: open it for the diagnosis and the fix.",
                           "Open the failing test", OPEN_TEST),
    _S.DECLINED: NextAction("The administrator declined (or could not) consent. Talk to them, then issue a new link.",
                            "Issue a new consent link", ISSUE_LINK),
    _S.OFFBOARDED: NextAction("Offboarded: token tests stopped. The customer should delete the app from their tenant."),
}


def next_action(tenant: CustomerTenant, *, role_request: bool = True) -> NextAction:
    """NEXT_STEPS for the tenant; an offboarded tenant whose removal is not confirmed yet is asked to test, and a
    no-role tenant without a role request to copy (no test recorded what is missing) to test."""
    if tenant.offboarded_at and not tenant.removal_confirmed_at:
        return NextAction(NEXT_STEPS[_S.OFFBOARDED].text, "Test now to confirm removal", TEST_NOW)
    if tenant.status == _S.NO_ROLE and not role_request:
        return NextAction(NEXT_STEPS[_S.NO_ROLE].text, "Test now", TEST_NOW)
    return NEXT_STEPS[tenant.status]


def access_request(tenant: CustomerTenant) -> AccessRequest | None:
    """For a tenant without the agreed access: what its last no-role test found missing, ready to copy."""
    if tenant.status != _S.NO_ROLE:
        return None
    test = (tenant.token_tests.filter(outcome=TokenTest.Outcome.NO_ROLE).order_by("-finished_at", "-pk")
            .prefetch_related("steps").first())
    return build_access_request(test, app_name=tenant.home_app.name, app_client_id=str(tenant.home_app.client_id),
                                tenant_name=str(tenant), tenant_id=str(tenant.tenant_id), cloud=tenant.cloud)
