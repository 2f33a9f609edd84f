"""Views of the staff console: each role's home page, and the dashboard (tenants' and token tests' health, recent
activity)."""
from django.shortcuts import redirect, render

from onboarding.selectors import health_overview
from portal import selectors as portal_selectors
from portal.roles import can, staff_required

RECENT_EVENTS_SHOWN = 8


def home(request):
    """Each role lands on its home page: the audit trail for auditors, the dashboard for everyone else."""
    if request.user.is_authenticated and not can(request.user, "view") and can(request.user, "audit"):
        return redirect("portal:audit-list")
    return redirect("console:dashboard")


@staff_required("view")
def dashboard(request):
    health = health_overview()
    return render(request, "console/dashboard.html", {
        "health": health if health["tenants_total"] or health["recent_total"] else None,
        "recent_events": portal_selectors.audit_events()[:RECENT_EVENTS_SHOWN]})
