"""Staff roles (groups made by a migration) and the one guard every staff view uses."""
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

VIEWER, OPERATOR, ADMIN, AUDITOR = "viewer", "operator", "admin", "auditor"
ROLES = (VIEWER, OPERATOR, ADMIN, AUDITOR)

# What each capability needs (DESIGN.md, Roles): viewer < operator < admin; the auditor only reads the audit trail.
CAPABILITIES = {
    "view": {VIEWER, OPERATOR, ADMIN},
    "operate": {OPERATOR, ADMIN},
    "administer": {ADMIN},
    "audit": {AUDITOR, ADMIN},
}


def roles_of(user) -> frozenset[str]:
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset(ROLES)
    cached = getattr(user, "_portal_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._portal_roles = cached
    return cached


def can(user, capability: str) -> bool:
    return bool(roles_of(user) & CAPABILITIES[capability])


def staff_required(capability: str):
    """Login redirect for anonymous users, 403 for staff without the capability."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not can(request.user, capability):
                raise PermissionDenied(f"Your role does not allow this ({capability}).")
            return view(request, *args, **kwargs)

        wrapped.required_capability = capability
        return wrapped

    return decorator


class _Capabilities:
    def __init__(self, user):
        self.user = user

    def __getitem__(self, capability):
        return can(self.user, capability)


def context_processor(request):
    user = getattr(request, "user", None)
    if user is None:
        return {}
    return {"can": _Capabilities(user), "staff_roles": sorted(roles_of(user)), "nav": _nav_section(request)}


def _nav_section(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return ""
    name = match.url_name or ""
    if match.namespace == "onboarding":
        return "customers"
    if match.namespace == "exchange":
        return "tokentests" if name.startswith(("tokentest", "sweep")) else "identities"
    if match.namespace == "portal":
        return "audit" if name.startswith("audit") else "dashboard"
    return ""
