from django.apps import AppConfig

from exchange.signals import tenants_tested


class OnboardingConfig(AppConfig):
    name = "onboarding"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from onboarding.receivers import tenant_health_update  # needs the models: imported once they are loaded

        tenants_tested.connect(tenant_health_update, sender=self.apps.get_model("exchange", "TokenTest"),
                               dispatch_uid="onboarding.tenant_health_update")
