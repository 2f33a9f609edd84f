"""Events carry their chain scheme: those recorded before AUDIT_KEY keep their unkeyed SHA-256 links (scheme 1) and
stay verifiable; new events are chained with HMAC-SHA256 (scheme 2), the first of them from the last unkeyed hash.
Adding the column sets no row (PostgreSQL stores the default; SQLite rebuilds the table before 0005's triggers)."""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("portal", "0003_audit_append_only")]
    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="scheme",
            field=models.PositiveSmallIntegerField(
                default=1, editable=False, help_text="1: unkeyed SHA-256 (before AUDIT_KEY), 2: HMAC-SHA256"),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="scheme",
            field=models.PositiveSmallIntegerField(
                default=2, editable=False, help_text="1: unkeyed SHA-256 (before AUDIT_KEY), 2: HMAC-SHA256"),
        ),
    ]
