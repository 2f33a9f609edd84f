"""manage.py api_demo_seed: trust the demo emulator's managed identity (the workers' VM) as an operator workload.

Idempotent; run by `make demo`. The identity's token is the one any process on the demo "VM" gets from the
emulator's IMDS for the resource api://keyless-portal (README, "Automation API")."""
from django.core.management.base import BaseCommand

from api.models import IdentityProvider
from api.services import identity_provider_create
from emulator.world import HOME, MI_PRINCIPAL_ID
from portal.services import Actor

NAME = "demo-worker-vm"
AUDIENCE = "api://keyless-portal"


class Command(BaseCommand):
    help = "Register the demo's identity provider (the emulator's managed identity, role operator)."

    def handle(self, *args, **options):
        if not IdentityProvider.objects.filter(name=NAME).exists():
            identity_provider_create(
                actor=Actor.system("demo"), name=NAME, kind=IdentityProvider.Kind.AZURE,
                issuer_url=f"https://login.microsoftonline.com/{HOME}/v2.0", audience=AUDIENCE,
                subject=MI_PRINCIPAL_ID, role="operator", session_seconds=900,
                description="The demo's worker VM (the emulator's user-assigned managed identity).")
        self.stdout.write(f"Identity provider {NAME}: managed identity {MI_PRINCIPAL_ID} → operator, audience "
                          f"{AUDIENCE}")
