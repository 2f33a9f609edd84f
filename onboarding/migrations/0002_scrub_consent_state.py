"""Consent links used before the state was kept out of storage held it in clear in `redirect_params`: replace it with
its hash prefix. (Audit events holding it cannot be changed: the trail is append-only.)"""
import hashlib

from django.db import migrations


def scrub_state(apps, schema_editor):
    ConsentLink = apps.get_model("onboarding", "ConsentLink")
    changed = []
    for link in ConsentLink.objects.filter(redirect_params__has_key="state").only("pk", "redirect_params").iterator():
        params = dict(link.redirect_params)
        state = str(params.pop("state") or "").strip()
        params["state_hash_prefix"] = hashlib.sha256(state.encode(errors="replace")).hexdigest()[:8]
        link.redirect_params = params
        changed.append(link)
    ConsentLink.objects.bulk_update(changed, ["redirect_params"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [("onboarding", "0001_initial")]
    operations = [migrations.RunPython(scrub_state, migrations.RunPython.noop)]
