"""Views of the staff console: each role's home page, and the dashboard (tenants' and token tests' health, recent
activity)."""
from django.shortcuts import redirect, render
from django.utils import timezone

from console import selectors
from portal.roles import can, staff_required


def home(request):
    """Each role lands on its home page: the audit trail for auditors, the dashboard for everyone else."""
    if request.user.is_authenticated and not can(request.user, "view") and can(request.user, "audit"):
        return redirect("portal:audit-list")
    return redirect("console:dashboard")


@staff_required("view")
def dashboard(request):
    return render(request, "console/dashboard.html", selectors.dashboard(now=timezone.now()))
