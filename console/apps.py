from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The staff console: the home page and the dashboard that combine the apps below it, and the demo command."""

    name = "console"
    default_auto_field = "django.db.models.BigAutoField"
