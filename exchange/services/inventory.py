"""Writes of the FIC inventory: syncing home apps and their federated credentials from Graph (with drift detection),
and creating or deleting a FIC through Graph. Every change is audited. (exchange.services re-exports these.)"""
from django.db import transaction
from django.utils import timezone

from exchange import graph
from exchange.models import FederatedCredential, HomeApp, ManagedIdentity
from exchange.selectors import worker_identity
from portal.services import Actor, audit_record

FIELDS = ("name", "issuer", "subject", "audiences", "description")


class InventoryError(Exception):
    @property
    def untrusted(self) -> bool:
        """Graph refused the workers' own identity (no working FIC): the fix is made by hand in Entra."""
        return "70021" in str(self)


def _identity_for(app: HomeApp) -> ManagedIdentity:
    identity = worker_identity(app)
    if identity is None:
        raise InventoryError("No managed identity of the app's home tenant is in use: register the workers' "
                             "identity first (Graph is read with its token).")
    return identity


def _sync_failed(*, app: HomeApp, actor: Actor, exc: Exception) -> dict:
    """A Graph (or identity) failure kept on the app, shown as a finding, audited."""
    error = exc.as_dict() if isinstance(exc, graph.GraphError) else {"code": "no_identity", "message": str(exc)}
    HomeApp.objects.filter(pk=app.pk).update(graph_error=error)
    audit_record(action="inventory.sync_failed", actor=actor, target_type="homeapp", target_id=str(app.pk),
                 detail=error)
    app.refresh_from_db()
    return {"error": error}


def _fics_reconcile(*, app: HomeApp, fics: list[dict], now) -> dict:
    """The recorded FICs made to match Graph's: added, changed (or back after removal) and removed ones, by name."""
    changes = {"added": [], "changed": [], "removed": []}
    known = {f.graph_id: f for f in app.credentials.all()}
    for item in fics:
        current = known.get(item["id"])
        if current is None:
            FederatedCredential.objects.create(home_app=app, graph_id=item["id"], first_seen=now, last_seen=now,
                                               **{k: item[k] for k in FIELDS})
            changes["added"].append(item["name"])
            continue
        diff = {k: [getattr(current, k), item[k]] for k in FIELDS if getattr(current, k) != item[k]}
        FederatedCredential.objects.filter(pk=current.pk).update(last_seen=now, removed_at=None,
                                                                 **{k: item[k] for k in FIELDS})
        if diff or current.removed_at:
            changes["changed"].append({"name": item["name"], "diff": diff})
    seen = {item["id"] for item in fics}
    for graph_id, current in known.items():
        if graph_id not in seen and current.removed_at is None:
            FederatedCredential.objects.filter(pk=current.pk).update(removed_at=now)
            changes["removed"].append(current.name)
    return changes


def fic_inventory_sync(*, app: HomeApp, actor: Actor) -> dict:
    """Read the app and its FICs from Graph; record added, changed and removed FICs. Graph errors are kept on the
    app (and shown as findings) instead of raised."""
    now = timezone.now()
    try:
        found = graph.read_app(app=app, identity=_identity_for(app))
    except (graph.GraphError, InventoryError) as exc:
        return _sync_failed(app=app, actor=actor, exc=exc)
    with transaction.atomic():
        changes = _fics_reconcile(app=app, fics=found.fics, now=now)
        HomeApp.objects.filter(pk=app.pk).update(
            object_id=found.object_id, sign_in_audience=found.sign_in_audience, redirect_uris=found.redirect_uris,
            graph_synced_at=now, graph_error={})
        for kind, items in changes.items():
            for item in items:
                audit_record(action=f"fic.{kind}", actor=actor, target_type="homeapp", target_id=str(app.pk),
                             detail=item if isinstance(item, dict) else {"name": item})
        audit_record(action="inventory.synced", actor=actor, target_type="homeapp", target_id=str(app.pk),
                     detail={"fics": len(found.fics), **{k: len(v) for k, v in changes.items()}})
    app.refresh_from_db()
    return changes


def fic_body_for(*, app: HomeApp, identity: ManagedIdentity) -> dict:
    """Exactly what fic_create sends to Graph for this identity (shown on the confirmation page)."""
    name = f"{identity.name}".lower()
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-_")[:100] or "worker"
    if app.credentials.filter(name=name, removed_at=None).exists():
        name = f"{name}-{str(identity.principal_id)[:8]}"
    return {"name": name, "issuer": identity.cloud_info.issuer(str(identity.tenant_id)),
            "subject": str(identity.principal_id), "audiences": [app.exchange_audience],
            "description": f"Keyless portal: trusts the managed identity {identity.name} ({identity.client_id})"}


def fic_create(*, app: HomeApp, actor: Actor, identity: ManagedIdentity | None = None,
               body: dict | None = None) -> FederatedCredential:
    """Create the FIC trusting `identity`, or the FIC `body` describes (the emergency stop's restart re-creates one)."""
    body = body or fic_body_for(app=app, identity=identity)
    try:
        created = graph.create_fic(app=app, identity=_identity_for(app), body=body)
    except graph.GraphError as exc:
        audit_record(action="fic.create_failed", actor=actor, target_type="homeapp", target_id=str(app.pk),
                     detail={"body": body, **exc.as_dict()})
        raise InventoryError(f"Graph refused to create the FIC: {exc.code} {exc.message}") from exc
    now = timezone.now()
    fic = FederatedCredential.objects.create(home_app=app, graph_id=created["id"], first_seen=now, last_seen=now,
                                             created_by_portal_at=now, **{k: created[k] for k in FIELDS})
    audit_record(action="fic.created", actor=actor, target_type="fic", target_id=str(fic.pk),
                 detail={"body": body, "graph_id": created["id"]})
    return fic


def fic_delete(*, credential: FederatedCredential, actor: Actor) -> None:
    app = credential.home_app
    try:
        graph.delete_fic(app=app, identity=_identity_for(app), graph_id=credential.graph_id)
    except graph.GraphError as exc:
        if exc.status != 404:  # already gone in Entra: just record it
            raise InventoryError(f"Graph refused to delete the FIC: {exc.code} {exc.message}") from exc
    FederatedCredential.objects.filter(pk=credential.pk).update(removed_at=timezone.now())
    audit_record(action="fic.deleted", actor=actor, target_type="fic", target_id=str(credential.pk),
                 detail={"name": credential.name, "issuer": credential.issuer, "subject": credential.subject})
