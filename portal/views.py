"""Views of the portal shell: audit trail and its export, staff sign-in and its locks, error pages."""
import csv
import json
from datetime import UTC, datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render

from portal import selectors
from portal.dates import date_range
from portal.forms import AuditFilterForm, LoginForm, LoginUnlockForm
from portal.htmx import render_page
from portal.http import is_safe_next
from portal.keyset import keyset_page
from portal.roles import staff_required
from portal.services import Actor, audit_checkpoint_write, audit_record, audit_refusal_record, client_ip, login_unlock

AUDIT_PAGE_SIZE = 50
EXPORT_CHUNK_ROWS = 2000  # rows read from the database at a time while an export streams
EXPORT_FIELDS = ["seq", "at", "actor_kind", "actor_id", "actor_label", "action", "target_type", "target_id",
                 "tenant_id", "detail", "ip", "prev_hash", "hash"]


def _audit_filters(request):
    form = AuditFilterForm(request.GET or None)
    filters = {}
    if form.is_valid():
        data = form.cleaned_data
        filters = {"action": data["action"], "actor": data["actor"], "tenant_id": data["tenant_id"].strip(),
                   **date_range(since=data["since"], until=data["until"])}
    return form, filters


@staff_required("audit")
def audit_list(request):
    """Newest first, by cursor on seq (portal/keyset.py): a page deep in a million events costs what the first does."""
    form, filters = _audit_filters(request)
    page = keyset_page(selectors.audit_events(**filters), keys=selectors.AUDIT_KEYS, size=AUDIT_PAGE_SIZE,
                       older=request.GET.get("older", ""), newer=request.GET.get("newer", ""))
    return render_page(request, "portal/audit_list.html", {"form": form, "page": page}, fragment="rows")


@staff_required("audit")
def audit_verify(request):
    quick = request.GET.get("quick") == "1"
    return render(request, "portal/audit_verify.html",
                  {"report": selectors.audit_chain_verify(full=not quick), "quick": quick})


class _Echo:
    def write(self, value):
        return value


# A cell a spreadsheet would read as a formula (or that hides one behind a tab or carriage return) gets a leading
# single quote, as OWASP's "CSV Injection" advice says: the text shows as it is and is never evaluated.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


@staff_required("audit")
def audit_export(request):
    """Stream the (filtered) trail as CSV or JSON Lines; the export itself is audited, then a checkpoint signs the
    chain's head (outside the database) and the export holds exactly the events up to that head."""
    form, filters = _audit_filters(request)
    fmt = "jsonl" if request.GET.get("format") == "jsonl" else "csv"
    audit_record(action="audit.exported", actor=Actor.staff(request.user), detail={"format": fmt, "filters": {
        k: str(v) for k, v in filters.items() if v}}, ip=client_ip(request))
    checkpoint = audit_checkpoint_write(reason="export")
    events = (selectors.audit_events(**filters).filter(seq__lte=checkpoint.head_seq).order_by("seq")
              .values_list(*EXPORT_FIELDS))

    def rows_csv():
        writer = csv.writer(_Echo())
        yield writer.writerow(EXPORT_FIELDS)
        for row in events.iterator(chunk_size=EXPORT_CHUNK_ROWS):
            row = list(row)
            row[1] = row[1].isoformat()
            row[9] = json.dumps(row[9], sort_keys=True)
            yield writer.writerow([spreadsheet_safe(cell) for cell in row])

    def rows_jsonl():
        for row in events.iterator(chunk_size=EXPORT_CHUNK_ROWS):
            item = dict(zip(EXPORT_FIELDS, row, strict=True))
            item["at"] = item["at"].isoformat()
            yield json.dumps(item, sort_keys=True) + "\n"

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(
        rows_csv() if fmt == "csv" else rows_jsonl(),
        content_type="text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson",
    )
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    response["X-Audit-Checkpoint"] = f"n={checkpoint.n}; head={checkpoint.head_seq}; hash={checkpoint.head_hash}"
    return response


class _SafeNext:
    """Django's sign-in/out views with their `next` checked as everywhere else (portal.http)."""

    def get_redirect_url(self):
        value = self.request.POST.get(self.redirect_field_name, self.request.GET.get(self.redirect_field_name))
        return value if is_safe_next(self.request, value) else ""


class LoginView(_SafeNext, auth_views.LoginView):
    """The staff password sign-in, throttled per account and address (portal.throttle, via the auth backend)."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.lock is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.lock.seconds_left)
        return response


class LogoutView(_SafeNext, auth_views.LogoutView):
    pass


@staff_required("administer")
def login_locks(request):
    """Admins unlock a locked account or address; recent lockouts are listed from the audit trail (the cache, shared
    by every process, cannot be listed)."""
    form = LoginUnlockForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        target = form.cleaned_data["target"]
        locked = login_unlock(target=target, actor=Actor.staff(request.user), ip=client_ip(request))
        if locked:
            messages.success(request, f"Unlocked {target} ({' and '.join(locked)}): it may sign in again.")
        else:
            messages.info(request, f"{target} was not locked; its failed sign-ins are cleared.")
        return redirect("portal:login-locks")
    return render(request, "portal/login_locks.html", {
        "form": form, "locks": selectors.login_locks_recent(), "account_limit": settings.LOGIN_ACCOUNT_FAILURE_LIMIT,
        "address_limit": settings.LOGIN_ADDRESS_FAILURE_LIMIT, "lockout_minutes": settings.LOGIN_LOCKOUT_SECONDS // 60,
    }, status=400 if form.errors else 200)


def _refusal_audited(request, reason: str) -> None:
    """Every refused request of a signed-in user is audited (aggregated per user, page and window)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        match = getattr(request, "resolver_match", None)
        route = (match.view_name if match else "") or "unresolved"
        audit_refusal_record(user=user, method=request.method, path=request.path, route=route, reason=reason,
                             ip=client_ip(request))


def error_403(request, exception=None):
    _refusal_audited(request, str(exception or ""))
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def csrf_failure(request, reason=""):
    """A form post refused for CSRF: our own 403 page (Django's has an inline style the CSP blocks), audited like any
    other refusal of a signed-in user."""
    _refusal_audited(request, f"CSRF: {reason}")
    return render(request, "403.html", {"csrf": True}, status=403)


def error_404(request, exception=None):
    return render(request, "404.html", status=404)


def error_500(request):
    return render(request, "500.html", status=500)
