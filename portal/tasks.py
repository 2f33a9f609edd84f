"""Tasks of the portal shell: a heartbeat proving that a worker process consumes the queue, the audit checkpoints."""
import os

from celery import shared_task

from portal.services import Actor, audit_checkpoint_write, audit_record


@shared_task(name="portal.heartbeat", acks_late=True)
def heartbeat(nonce: str) -> None:
    audit_record(action="worker.heartbeat", actor=Actor.system("worker"), detail={"nonce": nonce, "pid": os.getpid()})


@shared_task(name="portal.audit_checkpoint", acks_late=True)
def audit_checkpoint() -> None:
    """Beat, every AUDIT_CHECKPOINT_INTERVAL_MINUTES: sign the audit chain's head into the checkpoint store."""
    audit_checkpoint_write(reason="schedule", skip_if_unchanged=True)
