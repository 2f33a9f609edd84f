"""The Django project: settings, urls, the Celery app, staff roles, the audit trail and the dashboard shell."""
from portal.celery import app as celery_app

__all__ = ("celery_app",)
