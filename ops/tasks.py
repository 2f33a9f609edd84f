"""Celery tasks of ops: the state watcher (beat), one delivery per task (ids only), the daily digest (beat),
background exports and the removal of their old files (beat)."""
from celery import shared_task
from django.conf import settings

from ops import exports, services


@shared_task(name="ops.alerts_watch", acks_late=True)
def alerts_watch() -> None:
    services.alerts_watch()


@shared_task(name="ops.delivery_send", acks_late=True)
def delivery_send(delivery_id: int) -> None:
    services.delivery_send(delivery_id=delivery_id)


@shared_task(name="ops.digest_send", acks_late=True)
def digest_send() -> None:
    services.digest_send()


@shared_task(name="ops.export_run", acks_late=True, soft_time_limit=settings.JOBS_TIME_LIMIT_SECONDS,
             time_limit=settings.JOBS_TIME_LIMIT_SECONDS + 30)
def export_run(job_id: int) -> None:
    exports.export_execute(job_id=job_id)


@shared_task(name="ops.exports_expire", acks_late=True)
def exports_expire() -> None:
    exports.exports_expire()
