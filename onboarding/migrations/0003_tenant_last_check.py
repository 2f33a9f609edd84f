"""A tenant's last check, kept apart from its last definitive outcome (onboarding.receivers)."""

from django.db import migrations, models

NO_NEWS = ("transient", "propagating")  # outcomes that say nothing about the tenant (frozen here, as a migration must)


def last_check_from_history(apps, schema_editor):
    """Every tenant's last test becomes its last check; a tenant whose last outcome was "transient" or "propagating"
    gets back its last definitive outcome from its token tests (none: no outcome), and a verified one its clean
    failure count."""
    CustomerTenant = apps.get_model("onboarding", "CustomerTenant")
    TokenTest = apps.get_model("exchange", "TokenTest")
    CustomerTenant.objects.exclude(last_outcome="").update(last_check_at=models.F("last_tested_at"),
                                                           last_check_outcome=models.F("last_outcome"))
    for tenant in CustomerTenant.objects.filter(last_outcome__in=NO_NEWS).iterator():
        test = (TokenTest.objects.filter(tenant_id=tenant.pk, finished_at__isnull=False)
                .exclude(outcome__in=("", *NO_NEWS)).order_by("-finished_at").first())
        tenant.last_outcome = test.outcome if test else ""
        tenant.last_tested_at = test.finished_at if test else None
        if tenant.last_outcome == "verified":
            tenant.failing_since, tenant.consecutive_failures = None, 0
        tenant.save(update_fields=["last_outcome", "last_tested_at", "failing_since", "consecutive_failures"])


class Migration(migrations.Migration):

    dependencies = [
        ('onboarding', '0002_scrub_consent_state'),
        ('exchange', '0005_tokentest_lease'),
    ]

    operations = [
        migrations.AddField(
            model_name='customertenant',
            name='last_check_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='customertenant',
            name='last_check_outcome',
            field=models.CharField(blank=True, choices=[('verified', 'Access verified'), ('no_role', 'Consented, no Azure role'), ('not_consented', 'Not consented'), ('misconfigured', 'Credential misconfigured'), ('propagating', 'New credential propagating'), ('tenant_not_found', 'Tenant not found'), ('blocked', 'Blocked by policy'), ('transient', 'Service unavailable'), ('error', 'Unrecognised error')], max_length=24),
        ),
        migrations.RunPython(last_check_from_history, migrations.RunPython.noop),
    ]
