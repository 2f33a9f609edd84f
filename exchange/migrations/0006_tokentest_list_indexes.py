"""Indexes the token-test pages read: the list newest first (queued_at, id), by outcome or diagnosis (with queued_at),
the latest finished (finished_at). Dropped: the single-column indexes they replace, their _like twins (nothing filters
these columns with LIKE), and tenant_id's own index (tokentest_tenant_recent leads with tenant_id)."""
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('exchange', '0005_tokentest_lease'),
        ('onboarding', '0002_scrub_consent_state'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='tokentest',
            name='diagnosis_code',
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AlterField(
            model_name='tokentest',
            name='outcome',
            field=models.CharField(blank=True, choices=[('verified', 'Access verified'), ('no_role', 'Consented, no Azure role'), ('not_consented', 'Not consented'), ('misconfigured', 'Credential misconfigured'), ('propagating', 'New credential propagating'), ('tenant_not_found', 'Tenant not found'), ('blocked', 'Blocked by policy'), ('transient', 'Service unavailable'), ('error', 'Unrecognised error')], max_length=24),
        ),
        migrations.AlterField(
            model_name='tokentest',
            name='queued_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AlterField(
            model_name='tokentest',
            name='status',
            field=models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='queued', max_length=16),
        ),
        migrations.AlterField(
            model_name='tokentest',
            name='tenant',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='token_tests', to='onboarding.customertenant'),
        ),
        migrations.AddIndex(
            model_name='tokentest',
            index=models.Index(fields=['queued_at', 'id'], name='tokentest_queued'),
        ),
        migrations.AddIndex(
            model_name='tokentest',
            index=models.Index(fields=['outcome', 'queued_at', 'id'], name='tokentest_outcome_queued'),
        ),
        migrations.AddIndex(
            model_name='tokentest',
            index=models.Index(fields=['diagnosis_code', 'queued_at', 'id'], name='tokentest_diagnosis_queued'),
        ),
        migrations.AddIndex(
            model_name='tokentest',
            index=models.Index(fields=['finished_at'], name='tokentest_finished'),
        ),
    ]
