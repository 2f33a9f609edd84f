"""Reads of the sign-in app."""
from signin.models import DirectoryIdentity


def directory_actor(user) -> dict | None:
    """The directory identity an audit event names for this staff user (None for local-only accounts)."""
    if not getattr(user, "pk", None):
        return None
    cached = getattr(user, "_directory_actor", False)
    if cached is False:
        identity = DirectoryIdentity.objects.filter(user_id=user.pk).first()
        cached = user._directory_actor = identity.as_actor() if identity else None
    return cached


def directory_identity_of(*, tenant_id: str, object_id: str) -> DirectoryIdentity | None:
    return DirectoryIdentity.objects.select_related("user").filter(tenant_id=tenant_id, object_id=object_id).first()
