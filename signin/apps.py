from django.apps import AppConfig


class SigninConfig(AppConfig):
    name = "signin"
    verbose_name = "Staff sign-in (Entra ID)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from portal.services import STAFF_ACTOR_ENRICHERS
        from portal.signals import demo_emulator_started
        from signin import receivers  # noqa: F401  (break-glass auditing, the session's sign-in time)
        from signin.demo import demo_environment
        from signin.selectors import directory_actor

        STAFF_ACTOR_ENRICHERS.append(directory_actor)
        demo_emulator_started.connect(demo_environment, dispatch_uid="signin-demo")
