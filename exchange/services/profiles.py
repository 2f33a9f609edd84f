"""Access profiles, created and edited by admins; every change audited. One profile is the default."""
from django.db import transaction

from exchange.models import AccessProfile
from exchange.services.registry import _create_audited, model_update
from portal.services import Actor


def _only_default(profile: AccessProfile) -> None:
    """At most one default: making this one the default unsets the previous one (the constraint backs this)."""
    if profile.is_default:
        AccessProfile.objects.filter(is_default=True).exclude(pk=profile.pk).update(is_default=False)


def access_profile_create(*, actor: Actor, name: str, grants: list[dict], description: str = "",
                          is_default: bool = False) -> AccessProfile:
    with transaction.atomic():
        if is_default:
            AccessProfile.objects.filter(is_default=True).update(is_default=False)
        return _create_audited(AccessProfile, action="accessprofile.created", target_type="accessprofile",
                               actor=actor, shown=("name", "grants", "is_default"), name=name, grants=grants,
                               description=description, is_default=is_default)


def access_profile_update(*, profile: AccessProfile, actor: Actor, **fields) -> list[str]:
    with transaction.atomic():
        if fields.get("is_default"):
            profile.is_default = True
            _only_default(profile)
            profile.is_default = False  # so that model_update records the change
        return model_update(instance=profile, data=fields, action="accessprofile.updated",
                            target_type="accessprofile", actor=actor)
