from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    name = "onboarding"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from onboarding import receivers  # noqa: F401  (tenant health follows exchange's token tests)
