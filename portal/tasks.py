"""Tasks of the portal shell: a heartbeat proving that a worker process consumes the queue, the audit checkpoints, a
full re-verification of the audit chain."""
import os

from celery import shared_task
from django.conf import settings

from portal import verification
from portal.services import Actor, audit_checkpoint_write, audit_record


@shared_task(name="portal.heartbeat", acks_late=True)
def heartbeat(nonce: str) -> None:
    audit_record(action="worker.heartbeat", actor=Actor.system("worker"), detail={"nonce": nonce, "pid": os.getpid()})


@shared_task(name="portal.audit_checkpoint", acks_late=True)
def audit_checkpoint() -> None:
    """Beat, every AUDIT_CHECKPOINT_INTERVAL_MINUTES: sign the audit chain's head into the checkpoint store."""
    audit_checkpoint_write(reason="schedule", skip_if_unchanged=True)


@shared_task(name="portal.audit_verify_full", acks_late=True, soft_time_limit=settings.JOBS_TIME_LIMIT_SECONDS,
             time_limit=settings.JOBS_TIME_LIMIT_SECONDS + 30)
def audit_verify_full(verification_id: int) -> None:
    """A full re-verification of the audit chain, with progress on its AuditVerification row."""
    verification.audit_verification_execute(verification_id=verification_id)
