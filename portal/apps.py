from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        import portal.checks  # noqa: F401  (deploy checks)
        from portal import signals  # noqa: F401  (login/logout auditing)
