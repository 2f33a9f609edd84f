"""The national clouds: their hosts, the token-exchange audience a FIC must name, and where requests really go.

Identity (issuer strings, audiences, resource URIs) always uses the cloud's real names; transport can be pointed at
another base URL and CA (the emulator, in the demo and tests) through settings, with no other emulator-only path.
"""
import re
from dataclasses import dataclass

from django.conf import settings

TOKEN_EXCHANGE_APP_ID = "fb60f99c-7a34-4190-8149-302f77469936"  # aud of a managed-identity token for the exchange


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


def cloud(key: str) -> Cloud:
    return CLOUDS[key]

# Discovery's cloud_instance_name tells which national cloud a tenant belongs to (ENTRA_FACTS: Tenant discovery).
INSTANCE_CLOUDS = {"microsoftonline.com": "global", "microsoftonline.us": "usgov", "partner.microsoftonline.cn": "china"}
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def is_guid(value: str) -> bool:
    """A GUID in its dashed 36-character form, in either case."""
    return bool(_GUID.fullmatch(value or ""))


def consent_redirect_uri() -> str:
    """Where Microsoft sends the customer's admin after consent (the portal's public consent callback)."""
    return settings.PORTAL_PUBLIC_URL + "/consent/callback/"
