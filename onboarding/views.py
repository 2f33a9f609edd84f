"""Views of onboarding: customers and tenants (staff), and the public consent landing page (customers)."""
from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from exchange import selectors as exchange_selectors
from exchange.clouds import consent_redirect_uri
from exchange.diagnosis import diagnose
from exchange.models import HomeApp, Sweep, TokenTest
from exchange.services import EmergencyStopped, token_test_start
from onboarding import bulk, consent, selectors, services
from onboarding.forms import BulkImportForm, CustomerAccessProfileForm, CustomerForm, TenantAddForm
from onboarding.models import ConsentCallbackKind, ConsentLink, Customer, CustomerTenant, Tag
from portal.htmx import render_page
from portal.http import safe_next
from portal.roles import staff_required
from portal.services import Actor, client_ip

PAGE_SIZE = 25
PROGRESS_SALT = "consent-progress"
PROGRESS_TOKEN_MAX_AGE = 24 * 3600  # seconds the customer's progress page keeps working


@staff_required("view")
def customer_list(request):
    search, tag = request.GET.get("q", "").strip()[:100], request.GET.get("tag", "").strip()[:64]
    archived = request.GET.get("archived") == "1"
    page = Paginator(selectors.customers(search=search, archived=archived, tag=tag), PAGE_SIZE).get_page(
        request.GET.get("page"))
    context = {"page": page, "search": search, "archived": archived, "tag": tag,
               "tags": Tag.objects.values_list("name", flat=True), "has_home_app": HomeApp.objects.exists()}
    return render_page(request, "onboarding/customer_list.html", context, fragment="rows", target="customer-rows")


@staff_required("operate")
def customer_create(request):
    form = CustomerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            customer = services.customer_create(actor=Actor.staff(request.user), created_by=request.user,
                                                **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Customer {customer} created. Now add its tenant.")
            return redirect("onboarding:customer-detail", pk=customer.pk)
    return render(request, "onboarding/customer_form.html", {"form": form})


@staff_required("view")
def customer_detail(request, pk):
    customer = get_object_or_404(Customer, pk=pk)
    form = TenantAddForm()
    return render_page(request, "onboarding/customer_detail.html", {
        "customer": customer, "tenants": _tenants_page(request, customer), "form": form,
        "has_home_app": HomeApp.objects.exists(),
        "access_form": CustomerAccessProfileForm(instance=customer)}, fragment="rows", target="tenant-rows")


def _tenants_page(request, customer):
    """A page of the customer's tenants (an MSSP's biggest customers have hundreds)."""
    return Paginator(customer.tenants.select_related("home_app").prefetch_related("tags").order_by("primary_domain", "pk"), PAGE_SIZE).get_page(request.GET.get("page"))


@staff_required("operate")
@require_POST
def customer_access_profile(request, pk):
    customer = get_object_or_404(Customer, pk=pk)
    form = CustomerAccessProfileForm(request.POST, instance=Customer(pk=customer.pk))
    if not form.is_valid():
        messages.error(request, "Choose one of the access profiles.")
    elif services.customer_access_profile_set(customer=customer, access_profile=form.cleaned_data["access_profile"],
                                              actor=Actor.staff(request.user)):
        messages.success(request, f"Agreed access for {customer} changed: the next token test checks it.")
    return redirect("onboarding:customer-detail", pk=customer.pk)


@staff_required("operate")
@require_POST
def tenant_add(request, pk):
    customer = get_object_or_404(Customer, pk=pk)
    form = TenantAddForm(request.POST)
    if form.is_valid():
        try:
            tenant = services.tenant_add(customer=customer, domain_or_id=form.cleaned_data["domain_or_id"],
                                         home_app=form.cleaned_data["home_app"], cloud=form.cleaned_data["cloud"],
                                         tags=form.cleaned_data["tags"], actor=Actor.staff(request.user))
        except ValidationError as exc:
            for message in exc.message_dict.get("domain_or_id", exc.messages):
                form.add_error("domain_or_id", message)
        else:
            messages.success(request, f"Tenant {tenant} ({tenant.tenant_id}) added. Next: issue its consent link.")
            return redirect("onboarding:tenant-detail", pk=tenant.pk)
    response = render(request, "onboarding/customer_detail.html", {
        "customer": customer, "tenants": _tenants_page(request, customer), "form": form, "has_home_app": True})
    response.status_code = 400
    return response


@staff_required("view")
def tenant_detail(request, pk):
    tenant = get_object_or_404(CustomerTenant.objects.select_related("customer", "home_app"), pk=pk)
    last_test = selectors.tenant_last_definitive_test(tenant)
    access_request = selectors.access_request(tenant)
    return render(request, "onboarding/tenant_detail.html", {
        "tenant": tenant, "timeline": selectors.tenant_timeline(tenant), "link": selectors.current_link(tenant),
        "next_step": selectors.next_action(tenant, role_request=bool(access_request)), "last_test": last_test,
        "access_request": access_request,
        "last_diagnosis": diagnose(last_test) if last_test else None,
        "redirect_uri": consent_redirect_uri(),
        # Known only once the inventory has read the app from Graph.
        "redirect_registered": not tenant.home_app.graph_synced_at
        or consent_redirect_uri() in (tenant.home_app.redirect_uris or [])})


@staff_required("operate")
@require_POST
def tenant_test_now(request, pk):
    tenant = get_object_or_404(CustomerTenant, pk=pk)
    if tenant.testing_ended:
        messages.error(request, f"{tenant} is offboarded and the app's removal is confirmed: it is not tested.")
        return redirect(safe_next(request, request.POST.get("next"), "exchange:tokentest-list"))
    running = exchange_selectors.tenant_running_test(tenant)
    if running:
        messages.info(request, f"A token test for {tenant} is already {running.get_status_display().lower()}.")
        return redirect("exchange:tokentest-detail", pk=running.pk)
    test = token_test_start(tenant=tenant, trigger=TokenTest.Trigger.MANUAL, actor=Actor.staff(request.user),
                            requested_by=request.user)
    messages.success(request, f"Token test queued for {tenant}.")
    return redirect("exchange:tokentest-detail", pk=test.pk)


@staff_required("operate")
@require_POST
def sweep_start(request):
    running = Sweep.objects.filter(finished_at=None).first()
    if running:
        messages.info(request, "A sweep is already running.")
        return redirect("exchange:sweep-detail", pk=running.pk)
    tag = request.POST.get("tag", "").strip().lower()
    if tag and not Tag.objects.filter(name=tag).exists():
        messages.error(request, f"No tag “{tag[:64]}”: no sweep started.")
        return redirect("exchange:tokentest-list")
    try:
        sweep = services.sweep_all_start(trigger=Sweep.Trigger.MANUAL, actor=Actor.staff(request.user),
                                         started_by=request.user, tag=tag)
    except EmergencyStopped as exc:
        messages.error(request, str(exc))
        return redirect("exchange:estop")
    if sweep.total == 0 and tag:
        messages.warning(request, f"No tenant to test carries the tag “{tag}”.")
    elif sweep.total == 0:
        messages.warning(request, "No tenant to test yet: tenants are tested once their consent was received.")
    else:
        messages.success(request, f"Testing {sweep.total} tenants" + (f" tagged “{tag}”." if tag else "."))
    return redirect("exchange:sweep-detail", pk=sweep.pk)


@staff_required("operate")
@require_POST
def consent_link_issue(request, pk):
    tenant = get_object_or_404(CustomerTenant.objects.select_related("customer", "home_app"), pk=pk)
    try:
        link, url = services.consent_link_issue(tenant=tenant, actor=Actor.staff(request.user),
                                                issued_by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("onboarding:tenant-detail", pk=tenant.pk)
    # The URL carries the state, which is stored only as a hash: this page is the only time it is shown.
    response = render(request, "onboarding/consent_link_issued.html", {
        "tenant": tenant, "link": link, "url": url, "brand": settings.PORTAL_BRAND_NAME})
    response["Cache-Control"] = "no-store"
    return response


@staff_required("operate")
def tenant_offboard(request, pk):
    tenant = get_object_or_404(CustomerTenant.objects.select_related("customer", "home_app"), pk=pk)
    if request.method == "POST":
        services.tenant_offboard(tenant=tenant, actor=Actor.staff(request.user))
        messages.success(request, f"{tenant} is offboarded: token tests stopped and open consent links revoked.")
        return redirect("onboarding:tenant-detail", pk=tenant.pk)
    return render(request, "onboarding/tenant_offboard.html", {"tenant": tenant})


@staff_required("operate")
def bulk_import(request):
    form = BulkImportForm(request.POST or None, request.FILES or None)
    rows, problems = None, []
    if request.method == "POST" and form.is_valid():
        # Read at most one byte over the limit: the service refuses the file (and audits it) without reading more.
        data = form.cleaned_data["file"].read(settings.BULK_IMPORT_MAX_BYTES + 1)
        try:
            rows = bulk.bulk_import(data=data, home_app=form.cleaned_data["home_app"],
                                    actor=Actor.staff(request.user), created_by=request.user)
        except ValidationError as exc:
            problems = exc.messages
    return render(request, "onboarding/bulk_import.html", {
        "form": form, "rows": rows, "problems": problems, "created": sum(r.ok for r in rows or []),
        "refused": sum(not r.ok for r in rows or [])}, status=400 if form.errors or problems else 200)


# --- public: the consent landing page ------------------------------------------------------------------------------
def _brand():
    return {"brand": settings.PORTAL_BRAND_NAME, "logo": settings.PORTAL_BRAND_LOGO_URL,
            "contact": settings.PORTAL_CONTACT_EMAIL}


@never_cache
@require_GET
def consent_callback(request):
    ip = client_ip(request)
    hit = consent.consent_rate_limit_hit(ip=ip)
    if hit.refused:
        response = render(request, "onboarding/consent_landing.html",
                          {**_brand(), "kind": ConsentCallbackKind.RATE_LIMITED, "params": {}}, status=429)
        response["Retry-After"] = str(hit.retry_after)
        return response
    result = consent.consent_callback_accept(query=request.GET, ip=ip)
    context = {**_brand(), "kind": result.kind, "params": result.params, "link": result.link,
               "tenant": result.link.tenant if result.link else None}
    if result.kind == ConsentCallbackKind.ACCEPTED:
        context["progress_token"] = signing.dumps(result.link.pk, salt=PROGRESS_SALT)
        context["test"] = result.test
    return render(request, "onboarding/consent_landing.html", context, status=result.status_code)


@never_cache
@require_GET
def consent_progress(request, token):
    """The verification's live status for the customer (an unguessable, expiring URL; no login)."""
    try:
        link_id = signing.loads(token, salt=PROGRESS_SALT, max_age=PROGRESS_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return render(request, "onboarding/consent_landing.html", {**_brand(), "kind": ConsentCallbackKind.PROGRESS_EXPIRED,
                                                                   "params": {}}, status=404)
    link = get_object_or_404(ConsentLink.objects.select_related("verification", "tenant"), pk=link_id)
    test = link.verification
    context = {**_brand(), "test": test, "progress_token": token, "diagnosis": diagnose(test) if test else None,
               "tenant": link.tenant, "kind": ConsentCallbackKind.ACCEPTED, "params": {}}
    return render_page(request, "onboarding/consent_landing.html", context, fragment="progress",
                       stop_polling=test is None or test.finished)
