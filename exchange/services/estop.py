"""The emergency stop, the secret-less design's answer to "our credential leaked": engaging it stops every exchange at
once (token tests held, sweeps refused; optionally every FIC of the home apps deleted through Graph), and a staged
restart brings them back: (1) re-create the deleted FICs and run one canary token test, (2) resume token tests,
(3) resume sweeps — or abort back to stopped. Every step is audited and kept on the stop's history. What workers and
sweeps check is exchange.services.estop_guard, which every change here publishes."""
import json
from itertools import groupby

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from exchange import chain
from exchange.models import EmergencyStop, HomeApp, TokenTest
from exchange.selectors import worker_identity
from exchange.services.estop_guard import EmergencyStopped, canary_candidates, estop_publish
from exchange.services.inventory import InventoryError, fic_create, fic_delete, fic_inventory_sync
from exchange.services.queue import enqueue
from exchange.services.tokentests import token_test_start
from portal.services import Actor, audit_record

Stage = EmergencyStop.Stage
FIC_FIELDS = ("name", "issuer", "subject", "audiences", "description")
PRESENT, RECREATED, FAILED = "present", "re-created", "failed"


def _current(*stages: str) -> EmergencyStop:
    stop = EmergencyStop.objects.select_related("canary_test").filter(current=True).first()
    if stop is None:
        raise EmergencyStopped("No emergency stop is in force.")
    if stop.stage not in stages:
        raise EmergencyStopped(f"Not at this point: the stop is at “{stop.get_stage_display()}”.")
    return stop


def _record(stop: EmergencyStop, *, actor: Actor, ok: bool, summary: str, action: str, fields: dict | None = None,
            **details) -> EmergencyStop:
    """One step of the stop: its history entry, the row's new fields (only if no one moved the stop meanwhile), the
    audit event, and the new state published to every process once committed."""
    fields = fields or {}
    entry = {"stage": fields.get("stage", stop.stage), "at": timezone.now().isoformat(), "by": actor.label,
             "ok": ok, "summary": summary, "details": details}
    with transaction.atomic():
        if not EmergencyStop.objects.filter(pk=stop.pk, stage=stop.stage, current=True).update(
                history=[*stop.history, entry], **fields):
            raise EmergencyStopped("The emergency stop changed meanwhile: reload the page.")
        audit_record(action=action, actor=actor, target_type="estop", target_id=str(stop.pk),
                     detail={"stage": entry["stage"], "ok": ok, "summary": summary, **details})
        estop_publish()
    stop.refresh_from_db()
    return stop


def estop_engage(*, reason: str, actor: Actor, user=None, delete_fics: bool = False) -> EmergencyStop:
    """Stop every exchange now; with `delete_fics`, also delete every FIC of the home apps through Graph."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why: the banner shows it to every staff member and the audit trail "
                                         "keeps it."})
    try:
        with transaction.atomic():
            stop = EmergencyStop.objects.create(reason=reason, engaged_by=user, engaged_by_label=actor.label, history=[
                {"stage": Stage.STOPPED, "at": timezone.now().isoformat(), "by": actor.label, "ok": True,
                 "summary": "Engaged: token tests held, sweeps refused.", "details": {"delete_fics": delete_fics}}])
            audit_record(action="estop.engaged", actor=actor, target_type="estop", target_id=str(stop.pk),
                         detail={"reason": reason, "delete_fics": delete_fics})
            estop_publish()
    except IntegrityError as exc:
        raise EmergencyStopped("An emergency stop is already in force.") from exc
    return _fics_delete(stop, actor) if delete_fics else stop


def _delete_live(app: HomeApp, actor: Actor, keys: set | None = None) -> list[dict]:
    """Delete the app's live FICs (those of `keys` (issuer, subject) only, if given) through Graph, the one trusting
    the workers' identity last (its Graph token, once obtained, deletes the others first). One record per FIC."""
    fic_inventory_sync(app=app, actor=actor)  # what Entra holds now (a failed read is kept on the app)
    identity = worker_identity(app)
    trusted = str(identity.principal_id) if identity else ""
    live = [f for f in app.credentials.filter(removed_at=None) if keys is None or (f.issuer, f.subject) in keys]
    records = []
    for fic in sorted(live, key=lambda f: f.subject == trusted):
        record = {"app": app.pk, "app_name": app.name, "graph_id": fic.graph_id,
                  **{k: getattr(fic, k) for k in FIC_FIELDS}, "by_hand": _az_command(app, fic)}
        try:
            fic_delete(credential=fic, actor=actor)
            record["deleted"] = True
        except InventoryError as exc:
            record.update(deleted=False, error=str(exc))
        records.append(record)
    return records


def _az_command(app: HomeApp, fic) -> str:
    """How an administrator re-creates the FIC when the portal cannot (its own Graph access rides that FIC)."""
    parameters = json.dumps({"name": fic.name, "issuer": fic.issuer, "subject": fic.subject,
                             "audiences": list(fic.audiences), **({"description": fic.description} if fic.description
                                                                  else {})})
    return f"az ad app federated-credential create --id {app.client_id} --parameters '{parameters}'"


def _fics_delete(stop: EmergencyStop, actor: Actor) -> EmergencyStop:
    records = [record for app in HomeApp.objects.all() for record in _delete_live(app, actor)]
    deleted = sum(1 for r in records if r["deleted"])
    return _record(stop, actor=actor, ok=deleted == len(records), action="estop.fics_deleted",
                   summary=f"{deleted} of {len(records)} FIC(s) deleted through Graph.",
                   fields={"deleted_fics": records}, fics=[f"{r['app_name']}/{r['name']}" for r in records])


def _fics_recreate(stop: EmergencyStop, actor: Actor) -> list[dict]:
    """Each FIC the stop deleted: found back in Entra (re-created by hand), re-created through Graph, or failed."""
    results = []
    deleted = sorted((r for r in stop.deleted_fics if r.get("deleted")), key=lambda r: r["app"])
    for app_pk, records in groupby(deleted, key=lambda r: r["app"]):
        app = HomeApp.objects.filter(pk=app_pk).first()
        if app is not None:
            # A read of Graph with the workers' token: the home tenant's own proof that their FIC works again.
            proven = "error" not in fic_inventory_sync(app=app, actor=actor)
            live = {(f.issuer, f.subject) for f in app.credentials.filter(removed_at=None)}
        for record in records:
            result = {"app_name": record["app_name"], "name": record["name"],
                      "home_tenant": "accepted the workers' token" if app is not None and proven else "refused"}
            if app is None:
                results.append({**result, "status": FAILED, "error": "The home app was removed from the portal."})
            elif (record["issuer"], record["subject"]) in live:
                results.append({**result, "status": PRESENT})
            else:
                try:
                    fic_create(app=app, actor=actor, body={k: record[k] for k in FIC_FIELDS})
                    results.append({**result, "status": RECREATED})
                except InventoryError as exc:
                    results.append({**result, "status": FAILED, "error": str(exc)})
    return results


def estop_restart_canary(*, actor: Actor, user=None, canary_tenant_pk: int | None = None) -> EmergencyStop:
    """Stage 1: the deleted FICs back, then one token test of the canary tenant (the only test that runs)."""
    stop = _current(Stage.STOPPED, Stage.CANARY)
    # This process's MSAL clients would replay the refusal they met (a 400 for 60 s) and serve tokens obtained
    # before the stop: the FICs are proven afresh.
    chain.reset_clients()
    results = _fics_recreate(stop, actor)
    failed = [r for r in results if r["status"] == FAILED]
    if failed:
        return _record(stop, actor=actor, ok=False, action="estop.restart_failed", fics=results,
                       summary=f"{len(failed)} FIC(s) could not be re-created: exchanges stay stopped. Create them by "
                               "hand with the values shown, then run stage 1 again.")
    tenants = dict(canary_candidates())
    if canary_tenant_pk is not None and canary_tenant_pk not in tenants:
        raise EmergencyStopped("Choose the canary among the tenants recently verified.")
    with transaction.atomic():
        estop_publish()  # registered first: the flag names the canary before its task is sent
        test = None
        if canary_tenant_pk is not None:
            tenant = TokenTest.objects.select_related("tenant").filter(tenant_id=canary_tenant_pk).first().tenant
            test = token_test_start(tenant=tenant, trigger=TokenTest.Trigger.MANUAL, actor=actor, requested_by=user)
        canary = f"canary token test #{test.pk} of {tenants[canary_tenant_pk]}" if test else "no canary test"
        home = "; the home tenant accepted the workers' token (Graph read)" if results else ""
        return _record(stop, actor=actor, ok=True, action="estop.restart_canary", fics=results,
                       canary_test=test.pk if test else None, fields={"stage": Stage.CANARY, "canary_test": test},
                       summary=f"{len(results)} FIC(s) back{home}; {canary}.")


def estop_restart_tests(*, actor: Actor) -> EmergencyStop:
    """Stage 2: token tests run again; every held test is sent again. Sweeps stay refused."""
    stop = _current(Stage.CANARY)
    canary = stop.canary_test
    if canary is not None and canary.outcome != TokenTest.Outcome.VERIFIED:
        raise EmergencyStopped(f"The canary test #{canary.pk} has not verified access "
                               f"({canary.get_outcome_display() or canary.get_status_display()}): wait for it, run "
                               "stage 1 again with another canary, or abort.")
    with transaction.atomic():
        held = list(TokenTest.objects.filter(status=TokenTest.Status.QUEUED).values_list("pk", flat=True))
        stop = _record(stop, actor=actor, ok=True, action="estop.restart_tests", fields={"stage": Stage.TESTS},
                       resent=len(held), summary=f"Token tests resumed: {len(held)} held test(s) sent again.")
        enqueue(held, batch=settings.SWEEP_BATCH_SIZE)  # after the publish, registered by _record
    return stop


def estop_restart_sweeps(*, actor: Actor) -> EmergencyStop:
    """Stage 3: sweeps (manual and scheduled) run again: the stop is over."""
    stop = _current(Stage.TESTS)
    return _record(stop, actor=actor, ok=True, action="estop.ended", summary="Sweeps resumed: the stop is over.",
                   fields={"stage": Stage.ENDED, "current": None, "ended_at": timezone.now()})


def estop_abort(*, actor: Actor) -> EmergencyStop:
    """Back to stopped from a restart stage; FICs the stop had deleted and stage 1 re-created are deleted again."""
    stop = _current(Stage.CANARY, Stage.TESTS)
    stop = _record(stop, actor=actor, ok=True, action="estop.aborted", fields={"stage": Stage.STOPPED},
                   summary="Restart aborted: token tests held and sweeps refused again.")
    keys = {(r["app"], r["issuer"], r["subject"]) for r in stop.deleted_fics if r.get("deleted")}
    again = [record for app in HomeApp.objects.filter(pk__in={k[0] for k in keys})
             for record in _delete_live(app, actor, keys={(i, s) for a, i, s in keys if a == app.pk})]
    if again:
        stop = _record(stop, actor=actor, ok=all(r["deleted"] for r in again), action="estop.fics_deleted",
                       summary=f"{sum(1 for r in again if r['deleted'])} re-created FIC(s) deleted again.",
                       fics=[f"{r['app_name']}/{r['name']}" for r in again])
    return stop
