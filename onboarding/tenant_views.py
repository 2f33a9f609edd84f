"""Views of the tenants page: every tenant across customers (filters, search, sort, pages), its CSV export and the
bulk actions on the selected rows."""
import csv
from datetime import UTC, datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from onboarding import bulk_actions, tenant_selectors
from onboarding.bulk_actions import BulkAction
from onboarding.forms import TenantBulkForm, TenantFilterForm
from portal.htmx import render_page
from portal.roles import staff_required
from portal.services import Actor, audit_record, client_ip
from portal.spreadsheet import Echo, spreadsheet_safe

PAGE_SIZE = 50


def _filters(request):
    archived = bool(request.GET.get("archived"))
    form = TenantFilterForm(request.GET, choices=tenant_selectors.filter_choices(
        archived=archived, customer=request.GET.get("customer", "")[:20]))
    return form, form.filters()


@staff_required("view")
@require_GET
def tenant_list(request):
    form, filters = _filters(request)
    page = Paginator(tenant_selectors.tenants(filters), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(tenant, tenant_selectors.effective_tag_names(tenant)) for tenant in page.object_list]
    return render_page(request, "onboarding/tenant_list.html", {
        "nav": "tenants", "form": form, "filters": filters, "page": page, "rows": rows,
        "actions": BulkAction.choices, "sort_headers": tenant_selectors.COLUMNS},
        fragment="rows", target="tenant-rows")


@staff_required("view")
@require_GET
def tenant_export(request):
    """The filtered tenants as CSV, streamed (formula-guarded cells); the export is audited with its filters."""
    _, filters = _filters(request)
    audit_record(action="tenant.exported", actor=Actor.staff(request.user), ip=client_ip(request),
                 detail={"filters": {k: str(v) for k, v in vars(filters).items() if v}})
    writer = csv.writer(Echo())

    def rows():
        yield writer.writerow(tenant_selectors.EXPORT_FIELDS)
        for row in tenant_selectors.export_rows(filters):
            yield writer.writerow([spreadsheet_safe(cell) for cell in row])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="tenants-{stamp}.csv"'
    return response


@staff_required("operate")
@require_POST
def tenant_bulk(request):
    """One action on the selected tenants; offboarding asks for confirmation first (a page listing what happens)."""
    form = TenantBulkForm(request.POST)
    back = request.POST.get("back", "")
    back = back if back.startswith("?") else ""  # the list's own query string, to return to the same view
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return redirect(reverse("onboarding:tenant-list") + back)
    data = form.cleaned_data
    pks = data["tenants"]
    if data["action"] == BulkAction.OFFBOARD and not data["confirmed"]:
        will, already = bulk_actions.offboard_preview(tenant_pks=pks)
        return render(request, "onboarding/tenant_list_offboard.html",
                      {"nav": "tenants", "will": will, "already": already, "back": back})
    try:
        result = bulk_actions.tenants_bulk_act(action=data["action"], tenant_pks=pks, tag=data["tag"],
                                               actor=Actor.staff(request.user), user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(reverse("onboarding:tenant-list") + back)
    response = render(request, "onboarding/tenant_list_result.html",
                      {"nav": "tenants", "result": result, "back": back, "by_customer": result.links_by_customer()})
    if result.links:
        response["Cache-Control"] = "no-store"  # the links carry their state: shown once
    return response
