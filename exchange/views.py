"""Views of exchange: token tests (list, detail with live status), sweeps with live progress, identities and FICs.
They translate HTTP: reads come from selectors, writes from services."""
import copy
import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from exchange import selectors, services
from exchange.diagnosis import CONSENT, HOME_APP, INVENTORY, TENANT, WORKER, diagnose
from exchange.forms import HomeAppForm, ManagedIdentityForm, TokenTestFilterForm
from exchange.models import FederatedCredential, HomeApp, ManagedIdentity, Sweep
from exchange.tasks import fic_inventory_sync
from portal.htmx import render_page
from portal.keyset import keyset_page
from portal.roles import staff_required
from portal.services import Actor, audit_record

PAGE_SIZE = 50
SWEEP_FAILURES_SHOWN = 50
RECENT_SWEEPS = 5


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
    """Newest first, by cursor (portal/keyset.py); the tenant is picked by search (onboarding's tenant picker), never
    from a list of every tenant."""
    form = TokenTestFilterForm(request.GET or None)
    filters = form.filters() if form.is_valid() else {}
    page = keyset_page(selectors.token_tests(**filters), keys=selectors.TOKEN_TEST_KEYS, size=PAGE_SIZE,
                       older=request.GET.get("older", ""), newer=request.GET.get("newer", ""))
    context = {"form": form, "page": page, "sweeps": selectors.sweeps(RECENT_SWEEPS),
               "tenant": selectors.tenant_named(filters.get("tenant_id")), "sweep": filters.get("sweep_id")}
    return render_page(request, "exchange/tokentest_list.html", context, fragment="rows", target="tokentest-rows")


@staff_required("view")
def tokentest_detail(request, pk):
    test = get_object_or_404(selectors.token_tests_detailed(), pk=pk)
    diagnosis = diagnose(test)
    steps = list(test.steps.all())
    context = {"test": test, "steps": steps, "attempts": selectors.token_test_attempts(steps),
               "diagnosis": diagnosis, "fix_url": fix_url(diagnosis, test.tenant),
               "retention_days": settings.RETENTION_STEP_DAYS}
    return render_page(request, "exchange/tokentest_detail.html", context, fragment="status",
                       stop_polling=test.finished)


@staff_required("view")
def sweep_list(request):
    page = keyset_page(selectors.sweeps_all(), keys=selectors.SWEEP_KEYS, size=PAGE_SIZE,
                       older=request.GET.get("older", ""), newer=request.GET.get("newer", ""))
    return render_page(request, "exchange/sweep_list.html", {"page": page}, fragment="rows", target="sweep-rows")


@staff_required("view")
def sweep_detail(request, pk):
    sweep = get_object_or_404(Sweep.objects.select_related("started_by"), pk=pk)
    # The failures are part of the polled fragment: they appear as the sweep runs, and the last poll shows them all.
    context = {"sweep": sweep, "failures": selectors.sweep_failures(sweep, limit=SWEEP_FAILURES_SHOWN)}
    return render_page(request, "exchange/sweep_detail.html", context, fragment="progress",
                       stop_polling=not sweep.running)


# --- identities & credentials ---------------------------------------------------------------------------------------
@staff_required("view")
def identities(request):
    report = selectors.fic_inventory_report()
    return render_page(request, "exchange/identities.html", {"apps": report.apps, "identities": report.identities})


def _model_form(request, form_class, instance, *, create, update, title, check=None):
    """`check(fields=, instance=)`, if given, runs before saving: a ValidationError refuses the form, a note it
    returns (e.g. "not checked against Graph") is shown with the confirmation."""
    # The form validates a copy: its cleaning writes into the instance, and the service compares old with new.
    form = form_class(request.POST or None, instance=copy.copy(instance))
    if request.method == "POST" and form.is_valid():
        actor = Actor.staff(request.user)
        fields = {f: form.cleaned_data[f] for f in form.Meta.fields}
        try:
            note = check(fields=fields, instance=instance) if check else None
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            obj = create(actor=actor, **fields) if instance is None else update(instance, actor=actor, **fields)
            messages.success(request, f"{obj} saved.{f' {note.message}' if note and note.checked else ''}")
            if note and not note.checked:
                messages.warning(request, note.message)
            return redirect("exchange:identities")
    return render_page(request, "exchange/object_form.html", {"form": form, "title": title},
                       status=400 if form.errors else 200)


def _updated(update, keyword):
    def save(instance, *, actor, **fields):
        update(actor=actor, **{keyword: instance}, **fields)
        return instance
    return save


@staff_required("administer")
def homeapp_form(request, pk=None):
    instance = get_object_or_404(HomeApp, pk=pk) if pk else None
    return _model_form(request, HomeAppForm, instance, create=services.home_app_create,
                       update=_updated(services.home_app_update, "app"),
                       title=f"Edit {instance}" if instance else "Register the home app")


@staff_required("administer")
def identity_form(request, pk=None):
    instance = get_object_or_404(ManagedIdentity, pk=pk) if pk else None
    return _model_form(request, ManagedIdentityForm, instance, create=services.managed_identity_create,
                       update=_updated(services.managed_identity_update, "identity"),
                       check=services.managed_identity_graph_check,
                       title=f"Edit {instance}" if instance else "Register a managed identity")


@staff_required("operate")
@require_POST
def homeapp_sync(request, pk):
    """Queue a read of the app from Graph on a worker (in the demo it finishes in a second: reload to see it)."""
    app = get_object_or_404(HomeApp, pk=pk)
    actor = Actor.staff(request.user)
    audit_record(action="inventory.sync_requested", actor=actor, target_type="homeapp", target_id=str(app.pk))
    transaction.on_commit(lambda: fic_inventory_sync.delay(app.pk, staff_user_id=request.user.pk))
    messages.info(request, f"Reading {app} from Graph: the findings below update when the worker is done "
                           "(reload in a moment).")
    return redirect("exchange:identities")


FIC_BY_HAND = (" The portal reads Graph with the workers' own identity: when that identity has no working FIC, create "
               "this one in the Entra admin center (App registrations → the app → Certificates & secrets → Federated "
               "credentials) with the values shown.")


@staff_required("administer")
def fic_create(request, app_pk, identity_pk):
    app = get_object_or_404(HomeApp, pk=app_pk)
    identity = get_object_or_404(ManagedIdentity, pk=identity_pk)
    if request.method == "POST":
        try:
            fic = services.fic_create(app=app, identity=identity, actor=Actor.staff(request.user))
        except services.InventoryError as exc:
            messages.error(request, f"{exc}{FIC_BY_HAND if exc.untrusted else ''}")
        else:
            messages.success(request, f"FIC {fic.name} created. Entra takes a few minutes to accept it: token tests "
                                      "failing with AADSTS70021 meanwhile are labelled 'propagating' and retried.")
            return redirect("exchange:identities")
    return render_page(request, "exchange/fic_confirm.html", {
        "app": app, "identity": identity, "action": "create", "method": "POST", "url": app.fics_url(),
        "trusting": selectors.fics_trusting(app, identity),
        "body": json.dumps(services.fic_body_for(app=app, identity=identity), indent=2)})


@staff_required("administer")
def fic_delete(request, pk):
    fic = get_object_or_404(FederatedCredential.objects.select_related("home_app"), pk=pk, removed_at=None)
    if request.method == "POST":
        try:
            services.fic_delete(credential=fic, actor=Actor.staff(request.user))
        except services.InventoryError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"FIC {fic.name} deleted.")
            return redirect("exchange:identities")
    return render_page(request, "exchange/fic_confirm.html", {
        "app": fic.home_app, "fic": fic, "action": "delete", "method": "DELETE",
        "url": f"{fic.home_app.fics_url()}/{fic.graph_id}", "body": ""})
