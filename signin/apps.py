from django.apps import AppConfig


class SigninConfig(AppConfig):
    name = "signin"
    verbose_name = "Staff sign-in (Entra ID)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from signin import receivers

        receivers.connect()
