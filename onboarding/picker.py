"""The tenant picker of long lists' filters (the token tests'): a search answering a few tenants, never a <select> of
every tenant. Its own module: onboarding's views are many already."""
from urllib.parse import urlsplit

from django.http import QueryDict
from django.views.decorators.http import require_GET

from onboarding import selectors
from portal.htmx import render_page
from portal.http import safe_next
from portal.keyset import CURSOR_PARAMS
from portal.roles import staff_required

PICKER_DROPS = ("q", "next", "tenant", "page", *CURSOR_PARAMS)  # the picker's own fields, and a list's position


@staff_required("view")
@require_GET
def tenant_picker(request):
    """Up to TENANT_MATCHES tenants matching `q`, each a link to the list named by `next` (a path on this site) with
    its filters kept and tenant=<pk>: the htmx fragment of a list's tenant filter, or a page of its own without JS."""
    query = request.GET.get("q", "").strip()[:100]
    back = urlsplit(safe_next(request, request.GET.get("next"), "exchange:tokentest-list"))
    params = QueryDict(back.query, mutable=True)
    for name, values in request.GET.lists():  # the list's current filters (htmx includes its filter form)
        params.setlist(name, [value for value in values if value])
    for name in PICKER_DROPS:
        params.pop(name, None)
    matches = [(tenant, f"{back.path}?{_with_tenant(params, tenant.pk)}") for tenant in selectors.tenant_search(query)]
    context = {"query": query, "matches": matches, "limit": selectors.TENANT_MATCHES, "back": back.path}
    return render_page(request, "onboarding/tenant_picker.html", context, fragment="matches")


def _with_tenant(params: QueryDict, pk: int) -> str:
    chosen = params.copy()
    chosen["tenant"] = str(pk)
    return chosen.urlencode()
