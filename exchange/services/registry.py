"""The registry: home apps and managed identities, created and edited by staff, every change audited."""
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import models

from exchange import graph
from exchange.models import HomeApp, ManagedIdentity
from exchange.selectors import worker_identity
from portal.services import Actor, audit_record

GUID_FIELDS = ("client_id", "principal_id", "tenant_id", "cloud")


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


@dataclass(frozen=True)
class GraphCheck:
    checked: bool
    message: str


def managed_identity_graph_check(*, fields: dict, instance: ManagedIdentity | None = None) -> GraphCheck | None:
    """Hold a managed identity's ids against Graph before saving: its service principal, found by its client id in
    its tenant, must have its principal id. Raises ValidationError when Graph contradicts them; says "not checked"
    when Graph cannot be asked (no home app of that tenant, no token, Graph down). None when no id changed."""
    if instance is not None and all(getattr(instance, f) == fields[f] for f in GUID_FIELDS):
        return None
    app = HomeApp.objects.filter(home_tenant_id=fields["tenant_id"], cloud=fields["cloud"]).first()
    if app is None:
        return GraphCheck(False, "Not checked against Graph: no home app of this tenant to read it with.")
    # Graph is read with the workers' identity; the first one registered reads with its own token.
    reader = worker_identity(app) or ManagedIdentity(**{f: fields[f] for f in GUID_FIELDS})
    try:
        found = graph.find_service_principal(app=app, identity=reader, app_id=str(fields["client_id"]))
    except graph.GraphError as exc:
        return GraphCheck(False, f"Not checked against Graph ({exc.code}): saved as typed.")
    if found is None:
        raise ValidationError({"client_id": f"Graph has no service principal with this client id in tenant "
                                            f"{fields['tenant_id']}: no managed identity there has it."})
    if found["type"] and found["type"] != "ManagedIdentity":
        raise ValidationError({"client_id": f"This client id is {found['display_name']}'s, a {found['type']} "
                                            "service principal, not a managed identity."})
    if found["id"].lower() != str(fields["principal_id"]).lower():
        raise ValidationError({"principal_id": f"Graph gives this identity the principal id {found['id']}."})
    return GraphCheck(True, f"Checked against Graph: {found['display_name']} has these ids.")
