"""Celery tasks of onboarding: thin wrappers over its services."""
import logging

from celery import shared_task
from django.conf import settings

from exchange.models import Sweep
from exchange.services import EmergencyStopped
from onboarding import services
from portal.services import Actor, audit_record

logger = logging.getLogger(__name__)


@shared_task(name="onboarding.sweep_scheduled", acks_late=True)
def sweep_scheduled() -> None:
    try:
        services.sweep_all_start(trigger=Sweep.Trigger.SCHEDULE, actor=Actor.system("beat"),
                                 jitter_seconds=settings.SWEEP_JITTER_SECONDS)
    except EmergencyStopped as exc:  # skipped: one event per schedule says so
        logger.warning("scheduled sweep skipped: %s", exc)
        audit_record(action="sweep.skipped", actor=Actor.system("beat"), detail={"reason": str(exc)[:500]})
