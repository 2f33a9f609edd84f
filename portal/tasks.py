"""Tasks of the portal shell: a heartbeat proving that a worker process consumes the queue."""
import os

from celery import shared_task

from portal.services import Actor, audit_record


@shared_task(name="portal.heartbeat", acks_late=True)
def heartbeat(nonce: str) -> None:
    audit_record(action="worker.heartbeat", actor=Actor.system("worker"), detail={"nonce": nonce, "pid": os.getpid()})
