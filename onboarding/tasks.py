"""Celery tasks of onboarding: the scheduled sweep of every active tenant."""
from celery import shared_task
from django.conf import settings

from exchange.models import Sweep
from onboarding.services import sweep_all_start
from portal.services import Actor


@shared_task(name="onboarding.sweep_scheduled", acks_late=True)
def sweep_scheduled() -> None:
    sweep_all_start(trigger=Sweep.Trigger.SCHEDULE, actor=Actor.system("beat"),
                    jitter_seconds=settings.SWEEP_JITTER_SECONDS)
