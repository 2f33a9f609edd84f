"""Sweeps: every outcome counted once on its sweep, which closes once; the worker identity read once per window."""


from emulator import world as demo
from portal.services import Actor


def test_a_sweep_counts_every_outcome_and_closes_once(portal_on_emulator, make_tenant,
                                                      django_capture_on_commit_callbacks):
    from exchange.models import Sweep
    from onboarding.services import sweep_all_start
    from portal.models import AuditEvent

    for tenant_id in (demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND):
        make_tenant(tenant_id=tenant_id, home_app=portal_on_emulator.app)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            sweep = sweep_all_start(trigger=Sweep.Trigger.MANUAL, actor=Actor.system("test"))
        sweep.refresh_from_db()
        assert (sweep.total, sweep.done, sweep.succeeded, sweep.failed) == (3, 3, 1, 2)
        assert sweep.finished_at is not None
        finished = AuditEvent.objects.filter(action="sweep.finished", target_id=str(sweep.pk))
        assert [e.detail for e in finished] == [{"total": 3, "succeeded": 1, "failed": 2}]
        assert AuditEvent.objects.order_by("-seq").first().action == "sweep.finished"  # after its tests' events
    # Each tenant's outcome is audited when it changes (the first sweep), not again when it stays the same.
    assert AuditEvent.objects.filter(action="tokentest.finished").count() == 3


def test_a_sweep_reads_the_worker_identity_once_per_window(portal_on_emulator):
    from exchange.selectors import worker_identity

    app, identity = portal_on_emulator.app, portal_on_emulator.identity
    assert worker_identity(app, max_age=60) == identity
    identity.in_use = False
    identity.save()
    assert worker_identity(app, max_age=60) == identity  # a sweep's tests reuse this process's read...
    assert worker_identity(app) is None  # ...a manual test reads afresh
    assert worker_identity(app, max_age=60) is None  # and its read is what the next sweep test sees
