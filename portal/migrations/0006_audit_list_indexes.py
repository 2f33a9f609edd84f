"""Indexes the audit list reads, and none it does not: action by prefix (pattern ops, which serve = too), tenant_id
with seq (a tenant's events newest first); hash stays unique through a constraint, without the _like twin nothing read.

On SQLite, altering the fields rebuilds the table, which drops 0005's append-only triggers: they are created again."""
import importlib

from django.db import migrations, models

_append_only = importlib.import_module("portal.migrations.0005_audit_append_only_sqlite")


class Migration(migrations.Migration):

    dependencies = [
        ('portal', '0005_audit_append_only_sqlite'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(editable=False, max_length=64),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='tenant_id',
            field=models.CharField(blank=True, help_text='Entra tenant GUID, if any', max_length=64),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['action'], name='audit_action_prefix', opclasses=['varchar_pattern_ops']),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['tenant_id', 'seq'], name='audit_tenant_seq'),
        ),
        migrations.AddConstraint(
            model_name='auditevent',
            constraint=models.UniqueConstraint(fields=('hash',), name='auditevent_hash_unique'),
        ),
        migrations.RunPython(_append_only.forwards, migrations.RunPython.noop),
    ]
