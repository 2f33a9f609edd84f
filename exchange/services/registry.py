"""The registry: home apps and managed identities, created and edited by staff, every change audited."""
from django.db import models

from exchange.models import HomeApp, ManagedIdentity
from portal.services import Actor, audit_record


def _create_audited(model, *, action: str, target_type: str, actor: Actor, shown: tuple, **fields):
    obj = model(**fields)
    obj.full_clean()
    obj.save()
    audit_record(action=action, actor=actor, target_type=target_type, target_id=str(obj.pk),
                 detail={name: str(getattr(obj, name)) for name in shown})
    return obj


def model_update(*, instance: models.Model, data: dict, action: str, target_type: str, actor: Actor) -> list[str]:
    """Set the fields of `data` that differ, validate the whole object, save only those and audit them old → new.
    Returns the names of the changed fields (nothing is saved or audited when none changed)."""
    changes = {name: (getattr(instance, name), value) for name, value in data.items()
               if getattr(instance, name) != value}
    for name, (_, value) in changes.items():
        setattr(instance, name, value)
    instance.full_clean()
    if changes:
        instance.save(update_fields=list(changes))
        audit_record(action=action, actor=actor, target_type=target_type, target_id=str(instance.pk),
                     detail={"fields": sorted(changes),
                             "changes": {name: [str(old), str(new)] for name, (old, new) in changes.items()}})
    return sorted(changes)


def home_app_create(*, actor: Actor, **fields) -> HomeApp:
    return _create_audited(HomeApp, action="homeapp.created", target_type="homeapp", actor=actor,
                           shown=("client_id", "home_tenant_id", "cloud"), **fields)


def home_app_update(*, app: HomeApp, actor: Actor, **fields) -> list[str]:
    return model_update(instance=app, data=fields, action="homeapp.updated", target_type="homeapp", actor=actor)


def managed_identity_create(*, actor: Actor, **fields) -> ManagedIdentity:
    return _create_audited(ManagedIdentity, action="identity.created", target_type="identity", actor=actor,
                           shown=("client_id", "principal_id"), **fields)


def managed_identity_update(*, identity: ManagedIdentity, actor: Actor, **fields) -> list[str]:
    return model_update(instance=identity, data=fields, action="identity.updated", target_type="identity",
                        actor=actor)
