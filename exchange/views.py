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
from exchange.entra import oidc_discovery_problem_cached
from exchange.models import Sweep, TokenTest
from portal.roles import staff_required
from portal.services import Actor, audit_record

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


@staff_required("view")
def sweep_detail(request, pk):
    sweep = get_object_or_404(Sweep.objects.select_related("started_by"), pk=pk)
    context = {"sweep": sweep}
    if request.htmx:
        response = render(request, "exchange/sweep_detail.html#progress", context)
        return HttpResponseStopPolling(response.content) if not sweep.running else response
    context["failures"] = sweep.tests.filter(status=TokenTest.Status.FAILED).select_related("tenant")[:50]
    return render(request, "exchange/sweep_detail.html", context)


# --- identities & credentials ---------------------------------------------------------------------------------------
@staff_required("view")
def identities(request):
    from exchange.clouds import consent_redirect_uri
    from exchange.lint import lint_app, worst
    from exchange.models import HomeApp, ManagedIdentity

    identities = list(ManagedIdentity.objects.all())
    apps = []
    for app in HomeApp.objects.prefetch_related("credentials"):
        fics = [f for f in app.credentials.all() if f.removed_at is None]
        findings, per_fic = lint_app(app, fics=fics, identities=identities, portal_redirect_uri=consent_redirect_uri(),
                                     discovery=oidc_discovery_problem_cached)
        everything = findings + [f for items in per_fic.values() for f in items]
        apps.append({"app": app, "findings": findings, "fics": [(f, per_fic[f.pk]) for f in fics],
                     "status": worst(everything),
                     "first": next((f for f in everything if f.severity == "error"), None),
                     "worker_identity": selectors.worker_identity(app),
                     "removed": [f for f in app.credentials.all() if f.removed_at]})
    return render(request, "exchange/identities.html", {"apps": apps, "identities": identities})


def _model_form(request, form_class, instance, *, create, title, label):
    form = form_class(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        actor = Actor.staff(request.user)
        if instance is None:
            obj = create(actor=actor, **{f: form.cleaned_data[f] for f in form.Meta.fields})
        else:
            obj = form.save()
            audit_record(action=f"{label}.updated", actor=actor, target_type=label, target_id=str(obj.pk),
                         detail={"fields": sorted(form.changed_data)})
        messages.success(request, f"{obj} saved.")
        return redirect("exchange:identities")
    return render(request, "exchange/object_form.html", {"form": form, "title": title}, status=400 if form.errors else 200)


@staff_required("administer")
def homeapp_form(request, pk=None):
    from exchange.forms import HomeAppForm
    from exchange.models import HomeApp

    instance = get_object_or_404(HomeApp, pk=pk) if pk else None
    return _model_form(request, HomeAppForm, instance, create=services.home_app_create, label="homeapp",
                       title=f"Edit {instance}" if instance else "Register the home app")


@staff_required("administer")
def identity_form(request, pk=None):
    from exchange.forms import ManagedIdentityForm
    from exchange.models import ManagedIdentity

    instance = get_object_or_404(ManagedIdentity, pk=pk) if pk else None
    return _model_form(request, ManagedIdentityForm, instance, create=services.managed_identity_create,
                       label="identity", title=f"Edit {instance}" if instance else "Register a managed identity")


@staff_required("operate")
@require_POST
def homeapp_sync(request, pk):
    """Queue a read of the app from Graph on a worker (in the demo it finishes in a second: reload to see it)."""
    from django.db import transaction

    from exchange.models import HomeApp
    from exchange.tasks import fic_inventory_sync

    app = get_object_or_404(HomeApp, pk=pk)
    audit_record(action="inventory.sync_requested", actor=Actor.staff(request.user), target_type="homeapp",
                 target_id=str(app.pk))
    transaction.on_commit(lambda: fic_inventory_sync.delay(app.pk, request.user.get_username()))
    messages.info(request, f"Reading {app} from Graph: the findings below update when the worker is done "
                           "(reload in a moment).")
    return redirect("exchange:identities")


@staff_required("administer")
def fic_create(request, app_pk, identity_pk):
    from exchange.inventory import InventoryError, fic_body_for
    from exchange.inventory import fic_create as create
    from exchange.models import HomeApp, ManagedIdentity

    app = get_object_or_404(HomeApp, pk=app_pk)
    identity = get_object_or_404(ManagedIdentity, pk=identity_pk)
    body = fic_body_for(app=app, identity=identity)
    if request.method == "POST":
        try:
            fic = create(app=app, identity=identity, actor=Actor.staff(request.user))
        except InventoryError as exc:
            hint = (" The portal reads Graph with the workers' own identity: when that identity has no working FIC, "
                    "create this one in the Entra admin center (App registrations → the app → Certificates & secrets "
                    "→ Federated credentials) with the values shown." if "70021" in str(exc) else "")
            messages.error(request, f"{exc}{hint}")
        else:
            messages.success(request, f"FIC {fic.name} created. Entra takes a few minutes to accept it: token tests "
                                      "failing with AADSTS70021 meanwhile are labelled 'propagating' and retried.")
            return redirect("exchange:identities")
    import json

    return render(request, "exchange/fic_confirm.html", {
        "app": app, "identity": identity, "action": "create", "method": "POST",
        "url": f"{app.cloud_info.graph_url}/v1.0/applications/{app.object_id or '{object id}'}/federatedIdentityCredentials",
        "body": json.dumps(body, indent=2)})


@staff_required("administer")
def fic_delete(request, pk):
    from exchange.inventory import InventoryError
    from exchange.inventory import fic_delete as delete
    from exchange.models import FederatedCredential

    fic = get_object_or_404(FederatedCredential.objects.select_related("home_app"), pk=pk, removed_at=None)
    if request.method == "POST":
        try:
            delete(credential=fic, actor=Actor.staff(request.user))
        except InventoryError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"FIC {fic.name} deleted.")
            return redirect("exchange:identities")
    app = fic.home_app
    return render(request, "exchange/fic_confirm.html", {
        "app": app, "fic": fic, "action": "delete", "method": "DELETE",
        "url": f"{app.cloud_info.graph_url}/v1.0/applications/{app.object_id}/federatedIdentityCredentials/{fic.graph_id}",
        "body": ""})
