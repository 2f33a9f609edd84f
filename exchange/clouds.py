"""The national clouds: their hosts, the token-exchange audience a FIC must name, and where requests really go.

Identity (issuer strings, audiences, resource URIs) always uses the cloud's real names; transport can be pointed at
another base URL and CA (the emulator, in the demo and tests) through settings, with no other emulator-only path.
"""
import uuid
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Cloud:
    key: str
    name: str
    login_host: str
    exchange_audience: str
    arm_url: str
    graph_url: str

    def issuer(self, tenant_id: str) -> str:
        """The issuer a FIC must name for a managed identity of this tenant (ENTRA_FACTS: FIC `issuer`)."""
        return f"https://{self.login_host}/{tenant_id}/v2.0"

    @property
    def arm_scope(self) -> str:
        return f"{self.arm_url}/.default"

    @property
    def graph_scope(self) -> str:
        return f"{self.graph_url}/.default"

    # Where HTTP actually goes: the real host, or ENTRA_BASE_URL when set.
    @property
    def login_base(self) -> str:
        return settings.ENTRA_BASE_URL or f"https://{self.login_host}"

    @property
    def arm_base(self) -> str:
        return settings.ENTRA_BASE_URL or self.arm_url

    @property
    def graph_base(self) -> str:
        return settings.ENTRA_BASE_URL or self.graph_url


CLOUDS = {
    "global": Cloud("global", "Azure (global)", "login.microsoftonline.com", "api://AzureADTokenExchange",
                    "https://management.azure.com", "https://graph.microsoft.com"),
    "usgov": Cloud("usgov", "Azure US Government", "login.microsoftonline.us", "api://AzureADTokenExchangeUSGov",
                   "https://management.usgovcloudapi.net", "https://graph.microsoft.us"),
    "china": Cloud("china", "Azure China (21Vianet)", "login.chinacloudapi.cn", "api://AzureADTokenExchangeChina",
                   "https://management.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
}
CLOUD_CHOICES = [(cloud.key, cloud.name) for cloud in CLOUDS.values()]

# The cloud of a tenant, from the cloud_instance_name its OpenID discovery document names.
INSTANCE_CLOUDS = {"microsoftonline.com": "global", "microsoftonline.us": "usgov", "partner.microsoftonline.cn": "china"}
# Where Microsoft sends a customer's administrator after admin consent: the portal's public callback (the home app
# must list it as a redirect URI; the lint checks that).
CONSENT_CALLBACK_PATH = "/consent/callback/"


def consent_redirect_uri() -> str:
    return settings.PORTAL_PUBLIC_URL + CONSENT_CALLBACK_PATH


GUID_LENGTH = 36  # 8-4-4-4-12 hex digits and hyphens


def is_guid(value) -> bool:
    """A GUID in its hyphenated 36-character form, in either case (tenant, client and object ids)."""
    text = str(value)
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == GUID_LENGTH
