"""Celery tasks of the automation API: housekeeping only (expired portal tokens' rows, old idempotency keys)."""
from celery import shared_task

from api import services


@shared_task(name="api.purge", acks_late=True)
def purge() -> dict:
    return {"portal_tokens": services.portal_tokens_purge(), "idempotency_keys": services.idempotency_purge()}
