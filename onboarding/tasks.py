"""Celery tasks of onboarding: thin wrappers over its services."""
from celery import shared_task
from django.conf import settings

from exchange.models import Sweep
from onboarding import services
from portal.services import Actor


@shared_task(name="onboarding.sweep_scheduled", acks_late=True)
def sweep_scheduled() -> None:
    services.sweep_all_start(trigger=Sweep.Trigger.SCHEDULE, actor=Actor.system("beat"),
                             jitter_seconds=settings.SWEEP_JITTER_SECONDS)
