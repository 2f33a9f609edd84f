from django.apps import AppConfig
from django.db.backends.signals import connection_created


class PortalConfig(AppConfig):
    name = "portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        import portal.checks  # noqa: F401  (deploy checks)
        from portal import signals  # noqa: F401  (login/logout auditing)
        from portal.audit import sqlite_register_functions

        # The SQLite triggers that keep the audit trail append-only call this function (migration 0005).
        connection_created.connect(sqlite_register_functions, dispatch_uid="portal-audit-sqlite-functions")
