"""Exports page: start an export from a list page (its filters), follow its progress, download the file (only its
requester, and only while their role still allows the list it came from)."""
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from ops import exports
from ops.export_models import ExportJob
from portal.htmx import render_page
from portal.roles import can
from portal.services import client_ip

LIST_PAGES = {ExportJob.Kind.AUDIT: "portal:audit-list", ExportJob.Kind.TOKEN_TESTS: "exchange:tokentest-list"}
PAGE_SIZE = 25


def exporter_required(view):
    """Signed in, and allowed one of the lists that can be exported (viewers and up: token tests; auditors: audit)."""
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (can(request.user, "view") or can(request.user, "audit")):
            raise PermissionDenied("Your role does not allow exports.")
        return view(request, *args, **kwargs)

    return wrapped


@exporter_required
@require_POST
def export_start(request, kind: str):
    """The list page's export buttons: the filters ride in the query string (or, from htmx, in the form: the filters
    as they are now), the format in the button pressed."""
    if not exports.export_allowed(request.user, kind):
        raise PermissionDenied("Your role does not allow this export.")
    params = request.GET.copy()
    params.update(request.POST)
    try:
        job = exports.export_start(user=request.user, kind=kind, fmt=request.POST.get("format", ""), params=params)
    except exports.ExportError as exc:
        messages.error(request, str(exc))
        return _go(request, reverse(LIST_PAGES.get(kind, "ops:export-list")))
    messages.info(request, f"Export #{job.pk} started: it runs in the background; this page shows its progress and "
                           "the download once it is ready.")
    return _go(request, reverse("ops:export-detail", args=[job.pk]))


def _go(request, url: str):
    """A redirect; from htmx, one the browser follows as a whole page (not swapped into the button's form)."""
    return HttpResponseClientRedirect(url) if getattr(request, "htmx", False) else redirect(url)


@exporter_required
@require_GET
def export_list(request):
    page = Paginator(exports.export_jobs_for(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    running = any(job.running for job in page.object_list)
    context = {"page": page, "running": running, "retention_hours": f"{settings.EXPORT_RETENTION_HOURS:g}"}
    return render_page(request, "ops/export_list.html", context, fragment="rows",
                       stop_polling=not running)


def _own_job(request, pk: int) -> ExportJob:
    return get_object_or_404(ExportJob.objects.select_related("requested_by"), pk=pk, requested_by=request.user)


@exporter_required
@require_GET
def export_detail(request, pk: int):
    job = _own_job(request, pk)
    return render_page(request, "ops/export_detail.html", {"job": job, "list_page": LIST_PAGES[job.kind]},
                       fragment="progress", stop_polling=not job.running)


@exporter_required
@require_GET
def export_download(request, pk: int):
    job = _own_job(request, pk)
    if not exports.export_allowed(request.user, job.kind):
        raise PermissionDenied("Your role no longer allows this export.")
    path = exports.export_path(job)
    if path is None:
        raise Http404("This export has no file (not finished, failed, or removed after the retention period).")
    exports.export_downloaded(job=job, user=request.user, ip=client_ip(request))
    response = FileResponse(open(path, "rb"), as_attachment=True, filename=job.file_name,  # noqa: SIM115
                            content_type="text/csv; charset=utf-8" if job.format == "csv" else "application/x-ndjson")
    response["X-Content-SHA256"] = job.sha256
    if job.checkpoint:
        checkpoint = job.checkpoint
        response["X-Audit-Checkpoint"] = (f"n={checkpoint['n']}; head={checkpoint['head_seq']}; "
                                          f"hash={checkpoint['head_hash']}")
    return response
