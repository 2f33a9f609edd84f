"""Sweeps: one token test per tenant the caller names, counted on a Sweep."""
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from exchange.models import Sweep, TokenTest
from exchange.services.estop_guard import estop_refuse_sweep
from exchange.services.queue import enqueue
from portal.services import Actor, audit_record

# On Redis, 0 is served first: a sweep's fan-out waits behind single tests, retries and tests taken back from a dead
# worker (which would otherwise queue behind the rest of a 1,000-tenant sweep).
SWEEP_PRIORITY = 6


def sweep_start(*, tenant_pks: list[int], trigger: str, actor: Actor, started_by=None,
                jitter_seconds: float = 0.0) -> Sweep:
    """Fan out one token test per tenant of `tenant_pks` (onboarding says which are active), counted on a Sweep.
    Raises EmergencyStopped while the emergency stop is in force."""
    estop_refuse_sweep()
    with transaction.atomic():
        tenant_pks = list(tenant_pks)
        sweep = Sweep.objects.create(trigger=trigger, started_by=started_by, total=len(tenant_pks),
                                     finished_at=timezone.now() if not tenant_pks else None)
        test_trigger = TokenTest.Trigger.SWEEP if trigger == Sweep.Trigger.MANUAL else TokenTest.Trigger.SCHEDULE
        tests = TokenTest.objects.bulk_create(
            [TokenTest(tenant_id=pk, trigger=test_trigger, sweep=sweep, requested_by=started_by) for pk in tenant_pks])
        ids = [t.pk for t in tests] if all(t.pk for t in tests) else list(
            sweep.tests.values_list("pk", flat=True))
        audit_record(action="sweep.started", actor=actor, target_type="sweep", target_id=str(sweep.pk),
                     detail={"trigger": trigger, "tenants": len(tenant_pks)})
        enqueue(ids, jitter=jitter_seconds, batch=settings.SWEEP_BATCH_SIZE, priority=SWEEP_PRIORITY)
    return sweep
