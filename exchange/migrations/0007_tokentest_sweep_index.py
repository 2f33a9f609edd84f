"""A sweep's tests newest first (its page links to them): (sweep, queued_at, id), which also serves what sweep_id's own
index served (the foreign key's SET NULL, a sweep's failures), so that one is dropped."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('exchange', '0006_tokentest_list_indexes'),
        ('onboarding', '0002_scrub_consent_state'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='tokentest',
            name='sweep',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='tests', to='exchange.sweep'),
        ),
        migrations.AddIndex(
            model_name='tokentest',
            index=models.Index(fields=['sweep', 'queued_at', 'id'], name='tokentest_sweep_queued'),
        ),
    ]
