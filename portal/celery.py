"""The Celery app: configured from Django settings (CELERY_*), tasks discovered in every installed app."""
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task=None, **kwargs) -> None:
    """Around each task, as around a web request: drop a connection that is too old or broken, keep the others."""
    if task is not None and getattr(task.request, "is_eager", False):
        return  # an eager task runs inside its caller's connection (and transaction)
    from django.db import close_old_connections

    close_old_connections()
