"""The registry: the MSSP's home apps, the managed identities the workers run as, and the federated credentials
(FICs) between them as last read from Graph. exchange.models re-exports the models."""
from django.db import models
from django.utils import timezone

from exchange.clouds import CLOUD_CHOICES, CLOUDS


class HomeApp(models.Model):
    """The MSSP's multi-tenant app registration that customers consent to."""

    class ConsentVersion(models.TextChoices):
        V1 = "v1", "v1 (/adminconsent)"
        V2 = "v2", "v2 (/v2.0/adminconsent with scope)"

    name = models.CharField(max_length=120)
    client_id = models.UUIDField("application (client) id")
    object_id = models.UUIDField("object id", null=True, blank=True)
    home_tenant_id = models.UUIDField("home tenant id")
    cloud = models.CharField(max_length=16, choices=CLOUD_CHOICES, default="global")
    consent_version = models.CharField(max_length=2, choices=ConsentVersion.choices, default=ConsentVersion.V2)
    probe_resource_id = models.CharField(
        "ARM probe", max_length=600, blank=True,
        help_text="Empty: list subscriptions. Otherwise an ARM resource id to GET (e.g. /subscriptions/…).",
    )
    mi_audience = models.CharField(
        "managed-identity token audience", max_length=600, blank=True,
        help_text="Empty: the cloud's exchange audience (api://AzureADTokenExchange). An older setup's custom "
                  "Application ID URI audience goes here, so the workers request their token for it.")
    verify_home_token = models.BooleanField(
        "also prove the FIC in the home tenant", default=True,
        help_text="Adds one home-tenant token request to each test; tells a FIC problem from a consent problem.",
    )
    # As last read from Graph by the inventory sync.
    sign_in_audience = models.CharField(max_length=40, blank=True)
    redirect_uris = models.JSONField(default=list, blank=True)
    graph_synced_at = models.DateTimeField(null=True, blank=True)
    graph_error = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cloud", "client_id"], name="homeapp_unique_client_per_cloud")]
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def cloud_info(self):
        return CLOUDS[self.cloud]

    @property
    def exchange_audience(self) -> str:
        return self.mi_audience or CLOUDS[self.cloud].exchange_audience

    def fics_url(self) -> str:
        """Graph's collection of the app's federated credentials (shown before a change through Graph)."""
        return (f"{self.cloud_info.graph_url}/v1.0/applications/{self.object_id or '{object id}'}"
                "/federatedIdentityCredentials")


class ManagedIdentity(models.Model):
    """A user-assigned managed identity the workers run as; `in_use` marks the one they present."""

    name = models.CharField(max_length=120)
    client_id = models.UUIDField("client id", unique=True)
    principal_id = models.UUIDField("principal (object) id")
    tenant_id = models.UUIDField("tenant id")
    cloud = models.CharField(max_length=16, choices=CLOUD_CHOICES, default="global")
    resource_id = models.CharField(max_length=600, blank=True)
    in_use = models.BooleanField("used by the workers", default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "managed identities"

    def __str__(self):
        return self.name

    @property
    def cloud_info(self):
        return CLOUDS[self.cloud]


class FederatedCredential(models.Model):
    """One FIC of a home app as last read from Microsoft Graph."""

    home_app = models.ForeignKey(HomeApp, on_delete=models.CASCADE, related_name="credentials")
    graph_id = models.CharField(max_length=64)
    name = models.CharField(max_length=120)
    issuer = models.CharField(max_length=600)
    subject = models.CharField(max_length=600)
    audiences = models.JSONField(default=list)
    description = models.CharField(max_length=600, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)
    created_by_portal_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["home_app", "graph_id"], name="fic_unique_graph_id")]
        ordering = ["name"]

    def __str__(self):
        return self.name
