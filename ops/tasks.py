"""Celery tasks of ops: the state watcher (beat), one delivery per task (ids only), the daily digest (beat)."""
from celery import shared_task

from ops import services


@shared_task(name="ops.alerts_watch", acks_late=True)
def alerts_watch() -> None:
    services.alerts_watch()


@shared_task(name="ops.delivery_send", acks_late=True)
def delivery_send(delivery_id: int) -> None:
    services.delivery_send(delivery_id=delivery_id)


@shared_task(name="ops.digest_send", acks_late=True)
def digest_send() -> None:
    services.digest_send()
