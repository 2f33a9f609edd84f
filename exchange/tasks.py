"""Celery tasks of exchange: thin wrappers that pass ids (never tokens) to services."""
from celery import shared_task
from django.contrib.auth import get_user_model

from exchange import services
from exchange.models import HomeApp
from portal.services import Actor


@shared_task(name="exchange.token_test_run", acks_late=True)
def token_test_run(test_id: int) -> None:
    # A retry goes out as a new message; the attempt count lives on the TokenTest row (TOKEN_TEST_MAX_ATTEMPTS).
    services.token_tests_execute_and_requeue(test_ids=[test_id])


@shared_task(name="exchange.token_tests_run", acks_late=True)
def token_tests_run(test_ids: list[int]) -> None:
    services.token_tests_execute_and_requeue(test_ids=test_ids)


@shared_task(name="exchange.token_tests_reap", acks_late=True)
def token_tests_reap() -> None:
    services.token_tests_reap()


@shared_task(name="exchange.token_test_steps_prune", acks_late=True)
def token_test_steps_prune() -> None:
    """Beat, every RETENTION_INTERVAL_MINUTES: delete old tests' steps (exchange/services/retention.py)."""
    services.token_test_steps_prune()


def _actor(label: str, staff_user_id: int | None) -> Actor:
    """Who a sync is audited as: the staff member who asked for it, or the system (`label`: worker, beat)."""
    user = get_user_model().objects.filter(pk=staff_user_id).first() if staff_user_id else None
    return Actor.staff(user) if user is not None else Actor.system(label)


@shared_task(name="exchange.fic_inventory_sync", acks_late=True)
def fic_inventory_sync(app_id: int, actor_label: str = "worker", staff_user_id: int | None = None) -> None:
    app = HomeApp.objects.filter(pk=app_id).first()
    if app is not None:
        services.fic_inventory_sync(app=app, actor=_actor(actor_label, staff_user_id))


@shared_task(name="exchange.fic_inventory_sync_all", acks_late=True)
def fic_inventory_sync_all() -> None:
    for app_id in HomeApp.objects.values_list("pk", flat=True):
        fic_inventory_sync.delay(app_id, "beat")
