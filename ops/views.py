"""Alert history (viewers), channels and routes (admins), and the Prometheus endpoint (allow-list or bearer)."""
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from ops import selectors, services
from ops.forms import ChannelForm, RouteForm
from ops.metrics import metrics_text
from ops.models import AlertKind, Channel, Route
from portal.htmx import render_page
from portal.keyset import keyset_page
from portal.roles import staff_required
from portal.services import Actor, client_ip

ALERTS_PAGE_SIZE = 50


@staff_required("view")
@require_GET
def alert_list(request):
    kind = request.GET.get("kind", "")
    kind = kind if kind in AlertKind.values else ""
    page = keyset_page(selectors.alert_history(kind=kind), keys=selectors.ALERT_KEYS, size=ALERTS_PAGE_SIZE,
                       older=request.GET.get("older", ""), newer=request.GET.get("newer", ""))
    return render_page(request, "ops/alert_list.html", {"page": page, "kind": kind, "kinds": AlertKind.choices},
                       fragment="rows", target="alert-rows")


def _settings_page(request, *, channel_form=None, route_form=None, created=None, secret="", status=200):
    return render(request, "ops/settings.html", {
        "channels": Channel.objects.prefetch_related("routes__customer"),
        "channel_form": channel_form or ChannelForm(), "route_form": route_form or RouteForm(),
        "created": created, "secret": secret}, status=status)


@staff_required("administer")
@require_GET
def alert_settings(request):
    return _settings_page(request)


@staff_required("administer")
@require_POST
def channel_create(request):
    form = ChannelForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, channel_form=form, status=400)
    data = form.cleaned_data
    channel, secret = services.channel_create(actor=Actor.staff(request.user), name=data["name"], kind=data["kind"],
                                              addresses=data.get("addresses") or [], url=data.get("url") or "",
                                              format=data["format"])
    # The secret is in this one answer only (no redirect: it is never stored in a session or shown again).
    response = _settings_page(request, created=channel, secret=secret)
    response["Cache-Control"] = "no-store"
    return response


@staff_required("administer")
@require_POST
def channel_delete(request, pk: int):
    channel = get_object_or_404(Channel, pk=pk)
    services.channel_delete(channel=channel, actor=Actor.staff(request.user))
    messages.success(request, f"Channel “{channel.name}” deleted.")
    return redirect("ops:alert-settings")


@staff_required("administer")
@require_POST
def route_create(request):
    form = RouteForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, route_form=form, status=400)
    services.route_create(actor=Actor.staff(request.user), channel=form.cleaned_data["channel"],
                          customer=form.cleaned_data["customer"], kinds=form.cleaned_data["kinds"],
                          tag=form.cleaned_data["tag"].name if form.cleaned_data["tag"] else "")
    messages.success(request, "Route added.")
    return redirect("ops:alert-settings")


@staff_required("administer")
@require_POST
def route_delete(request, pk: int):
    route = get_object_or_404(Route.objects.select_related("channel", "customer"), pk=pk)
    services.route_delete(route=route, actor=Actor.staff(request.user))
    messages.success(request, "Route deleted.")
    return redirect("ops:alert-settings")


def metrics(request):
    """GET /metrics, answered by MetricsMiddleware before host validation and the HTTPS redirect (Prometheus scrapes a
    worker's address over plain HTTP from inside the network); the allow-list or the bearer token is the guard."""
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse("Method not allowed.\n", status=405, content_type="text/plain")
        response["Allow"] = "GET, HEAD"
        return response
    if not services.metrics_allowed(ip=client_ip(request), authorization=request.headers.get("Authorization", "")):
        return HttpResponse("Forbidden: not in METRICS_ALLOWED_CIDRS and no valid bearer token.\n", status=403,
                            content_type="text/plain")
    response = HttpResponse(metrics_text(), content_type="text/plain; version=0.0.4; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


class MetricsMiddleware:
    """Placed first in MIDDLEWARE (after the health probes): /metrics is answered here."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == "/metrics":
            return metrics(request)
        return self.get_response(request)
