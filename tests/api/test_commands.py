"""The API's commands and housekeeping: the demo's identity provider, identity_provider_add, the purge task."""
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from api.models import IdempotencyKey, IdentityProvider, PortalToken
from api.tasks import purge
from portal.models import AuditEvent
from tests.api.conftest import AUDIENCE, MI_ISSUER, ApiClient, exchange


def test_demo_seed_trusts_the_emulators_managed_identity(api_world):
    call_command("api_demo_seed")
    call_command("api_demo_seed")  # idempotent
    provider = IdentityProvider.objects.get(name="demo-worker-vm")
    assert (provider.issuer_url, provider.audience, provider.role) == (MI_ISSUER, AUDIENCE, "operator")
    # What the README's workload does: IMDS token for the portal's audience, exchanged, then an API call.
    response = exchange(api_world.imds_token(AUDIENCE), issuer=MI_ISSUER)
    assert response.status_code == 200, response.content
    assert ApiClient(response.json()["access_token"]).get("/health").status_code == 200


def test_identity_provider_add(db, capsys):
    call_command("identity_provider_add", "deploy", "--issuer", "https://token.actions.githubusercontent.com",
                 "--audience", AUDIENCE, "--subject", "repo:contoso/infra:environment:prod", "--role", "operator",
                 "--kind", "github", "--claim", "repository=contoso/infra")
    provider = IdentityProvider.objects.get(name="deploy")
    assert (provider.claim_name, provider.claim_value) == ("repository", "contoso/infra")
    assert AuditEvent.objects.get(action="api.provider_created").actor_label == "manage.py"
    with pytest.raises(CommandError, match="session_seconds"):
        call_command("identity_provider_add", "long", "--issuer", "https://issuer.example", "--audience", "a",
                     "--subject", "s", "--role", "viewer", "--session-seconds", "7200")


def test_purge_drops_old_rows_only(api_world):
    api = api_world.login("operator")
    old = PortalToken.objects.get(provider=api.provider)
    PortalToken.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=31))
    fresh = api_world.login("operator")
    IdempotencyKey.objects.create(owner="o", key="old", method="POST", path="/x", request_hash="h",
                                  created_at=timezone.now() - timedelta(days=2))
    IdempotencyKey.objects.create(owner="o", key="new", method="POST", path="/x", request_hash="h")
    assert purge() == {"portal_tokens": 1, "idempotency_keys": 1}
    assert list(PortalToken.objects.values_list("provider", flat=True)) == [fresh.provider.pk]
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
