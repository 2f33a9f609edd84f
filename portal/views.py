"""Views of the portal shell: audit trail and its verification (exports: ops/export_views.py), staff sign-in and its locks, error pages."""
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.shortcuts import get_object_or_404, redirect, render

from portal import selectors, verification
from portal.forms import AuditFilterForm, LoginForm, LoginUnlockForm
from portal.htmx import render_page
from portal.http import is_safe_next
from portal.keyset import keyset_page
from portal.roles import staff_required
from portal.services import Actor, audit_refusal_record, client_ip, login_unlock
from portal.verify_models import AuditVerification

AUDIT_PAGE_SIZE = 50
VERIFY_RUNS_SHOWN = 10


def _audit_filters(request):
    form = AuditFilterForm(request.GET or None)
    filters = {}
    if form.is_valid():
        filters = form.filters()
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
    """The chain's verification: GET shows the verified point and the latest runs; POST runs the incremental check
    here (only the events after the verified point: seconds) or starts a full re-verification on a worker."""
    if request.method == "POST":
        mode = request.POST.get("mode")
        point = verification.verified_point()
        if mode == AuditVerification.Mode.INCREMENTAL and point is not None:
            run = verification.audit_verification_run(mode=mode, user=request.user)
        else:  # a full run, or the first verification of all (no point yet): in the background
            run = verification.audit_verification_create(mode=AuditVerification.Mode.FULL, user=request.user)
        return redirect("portal:audit-verify-run", pk=run.pk)
    return render(request, "portal/audit_verify.html", {
        "point": verification.verified_point(), "runs": selectors.audit_verifications(VERIFY_RUNS_SHOWN),
        "running": selectors.audit_verification_running()})


@staff_required("audit")
def audit_verify_run(request, pk):
    run = get_object_or_404(AuditVerification.objects.select_related("requested_by"), pk=pk)
    return render_page(request, "portal/audit_verify_run.html", {"run": run}, fragment="progress",
                       stop_polling=not run.running)


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
