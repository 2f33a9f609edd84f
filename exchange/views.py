"""Views of exchange: token tests (list, detail with live status, "Test now"), sweeps with live progress."""
from datetime import UTC, datetime, time

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from exchange import selectors, services
from exchange.diagnosis import CONSENT, HOME_APP, INVENTORY, TENANT, WORKER, diagnose
from exchange.models import Sweep, TokenTest
from portal.roles import staff_required
from portal.services import Actor

PAGE_SIZE = 50

class TokenTestFilterForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=None, required=False, empty_label="All tenants")
    outcome = forms.ChoiceField(choices=[("", "Any outcome"), *TokenTest.Outcome.choices], required=False)
    status = forms.ChoiceField(choices=[("", "Any status"), *TokenTest.Status.choices], required=False)
    code = forms.CharField(required=False, max_length=40, label="Code",
                           widget=forms.TextInput(attrs={"placeholder": "e.g. 70021"}))
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Until")

    def __init__(self, *args, **kwargs):
        from onboarding.models import CustomerTenant

        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = CustomerTenant.objects.select_related("customer")


@staff_required("view")
def identities(request):
    return render(request, "exchange/identities.html", {})


def fix_url(diagnosis, tenant) -> str:
    """Where the fix of a diagnosis happens."""
    if diagnosis is None or not diagnosis.fix_place:
        return ""
    try:
        if diagnosis.fix_place in (CONSENT, TENANT):
            return reverse("onboarding:tenant-detail", kwargs={"pk": tenant.pk})
        if diagnosis.fix_place in (INVENTORY, HOME_APP, WORKER):
            return reverse("exchange:identities")
    except NoReverseMatch:
        return ""
    return ""


@staff_required("view")
def tokentest_list(request):
    form = TokenTestFilterForm(request.GET or None)
    filters = {}
    if form.is_valid():
        data = form.cleaned_data
        filters = {"outcome": data["outcome"], "code": data["code"].strip(), "status": data["status"]}
        if data["tenant"]:
            filters["tenant_id"] = data["tenant"].pk
        if data["since"]:
            filters["since"] = datetime.combine(data["since"], time.min, tzinfo=UTC)
        if data["until"]:
            filters["until"] = datetime.combine(data["until"], time.min, tzinfo=UTC)
    page = Paginator(selectors.token_tests(**filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(), "sweeps": selectors.sweeps(5)}
    if request.htmx and request.htmx.target == "tokentest-rows":
        return render(request, "exchange/tokentest_list.html#rows", context)
    return render(request, "exchange/tokentest_list.html", context)


@staff_required("view")
def tokentest_detail(request, pk):
    try:
        test = selectors.token_test_detail(pk)
    except TokenTest.DoesNotExist:
        return render(request, "404.html", status=404)
    diagnosis = diagnose(test)
    context = {"test": test, "steps": list(test.steps.all()), "diagnosis": diagnosis,
               "fix_url": fix_url(diagnosis, test.tenant)}
    if request.htmx:
        response = render(request, "exchange/tokentest_detail.html#status", context)
        return HttpResponseStopPolling(response.content) if test.finished else response
    return render(request, "exchange/tokentest_detail.html", context)


@staff_required("operate")
@require_POST
def tenant_test_now(request, pk):
    from onboarding.models import CustomerTenant

    tenant = get_object_or_404(CustomerTenant, pk=pk)
    if tenant.offboarded_at and tenant.removal_confirmed_at:
        # Offboarded tenants are tested only to confirm the customer removed the app; after that, never again.
        messages.error(request, f"{tenant} is offboarded and the app's removal is confirmed: it is not tested.")
        return redirect(request.POST.get("next") or reverse("exchange:tokentest-list"))
    running = selectors.tenant_running_test(tenant)
    if running:
        messages.info(request, f"A token test for {tenant} is already {running.get_status_display().lower()}.")
        return redirect("exchange:tokentest-detail", pk=running.pk)
    test = services.token_test_start(tenant=tenant, trigger=TokenTest.Trigger.MANUAL, actor=Actor.staff(request.user),
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
    sweep = services.sweep_start(trigger=Sweep.Trigger.MANUAL, actor=Actor.staff(request.user),
                                 started_by=request.user)
    if sweep.total == 0:
        messages.warning(request, "No tenant to test yet: tenants are tested once their consent was received.")
    else:
        messages.success(request, f"Testing {sweep.total} tenants.")
    return redirect("exchange:sweep-detail", pk=sweep.pk)


@staff_required("view")
def sweep_detail(request, pk):
    sweep = get_object_or_404(Sweep.objects.select_related("started_by"), pk=pk)
    context = {"sweep": sweep}
    if request.htmx:
        response = render(request, "exchange/sweep_detail.html#progress", context)
        return HttpResponseStopPolling(response.content) if not sweep.running else response
    context["failures"] = sweep.tests.filter(status=TokenTest.Status.FAILED).select_related("tenant")[:50]
    return render(request, "exchange/sweep_detail.html", context)
