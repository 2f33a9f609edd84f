from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    name = "onboarding"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from exchange.models import TokenTest
        from exchange.signals import tenants_tested
        from onboarding.receivers import tenant_health_update

        tenants_tested.connect(tenant_health_update, sender=TokenTest, dispatch_uid="onboarding.tenant_health_update")
