"""Onboarding fixtures: a customer on the emulator's demo app, and Microsoft's side of consent played by the emulator."""
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from onboarding.models import Customer


@pytest.fixture
def customer(db):
    return Customer.objects.create(name="Fabrikam Inc.")


@pytest.fixture
def consent_at_microsoft(portal_on_emulator):
    """Open a consent URL at the emulator and press Accept or Cancel: returns the redirect's query parameters."""
    emulator = portal_on_emulator.emulator

    def consent(url: str, action: str = "accept", signin_tenant: str | None = None) -> dict:
        http = requests.Session()
        http.trust_env, http.verify = False, emulator.ca_path
        page = http.get(url)
        assert page.status_code == 200, page.text
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        tenant = urlsplit(url).path.strip("/").split("/")[0]
        version = "v2" if "/v2.0/" in url else "v1"
        response = http.post(f"{emulator.base_url}/{tenant}/adminconsent/decision", allow_redirects=False, data={
            **query, "version": version, "action": action, "signin_tenant": signin_tenant or tenant})
        return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}

    return consent
